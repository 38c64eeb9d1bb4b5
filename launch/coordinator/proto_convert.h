// C++ values <-> proto/coordinator.proto messages. The from_proto functions validate what they
// read and throw moe::Error naming the field ("worker.host is empty"), so a handler turns a
// malformed request into INVALID_ARGUMENT with that message in one catch.
#pragma once

#include <cstddef>

#include "launch/coordinator/control_types.h"
#include "parallel/cluster_plan.h"
#include "proto/coordinator.pb.h"

namespace moe::coordinator {

void to_proto(const parallel::WorkerInfo& in, v1::WorkerInfo* out);
// Throws: empty host, mpi_rank < -1, a device without a kind, a negative or non-finite rate.
// The id is copied as is (Register checks that it is empty).
parallel::WorkerInfo from_proto(const v1::WorkerInfo& in);

void to_proto(const parallel::WorkerAssignment& in, v1::WorkerAssignment* out);
parallel::WorkerAssignment from_proto(const v1::WorkerAssignment& in);

void to_proto(const parallel::ClusterPlan& in, v1::ClusterPlan* out);
// Converts without checking; validate_plan says whether it is usable.
parallel::ClusterPlan from_proto(const v1::ClusterPlan& in);

// Throws moe::Error saying what is wrong unless the plan gives each of `workers` workers exactly one
// assignment: tp, pp, ep >= 1 with tp * pp * ep == workers; pp contiguous non-empty stages from
// layer 0; assignments by world rank, each with ranks in range, its stage's layers and a distinct
// worker index in [0, workers).
void validate_plan(const parallel::ClusterPlan& plan, size_t workers);

void to_proto(const Job& in, v1::Job* out);
Job from_proto(const v1::Job& in);  // throws as validate(Job)

void to_proto(const Progress& in, v1::Progress* out);
Progress from_proto(const v1::Progress& in);  // throws on a negative or non-finite time

void to_proto(const StepMetrics& in, v1::StepMetrics* out);
StepMetrics from_proto(const v1::StepMetrics& in);  // throws as validate(StepMetrics)

// The result's fields of a ReportResultRequest (the request carries the worker id besides).
void to_proto(const JobResult& in, v1::ReportResultRequest* out);
JobResult from_proto(const v1::ReportResultRequest& in);  // throws as validate(JobResult)

}  // namespace moe::coordinator

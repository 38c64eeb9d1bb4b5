// moe convert and the packed store: round trips for every architecture and several recipes,
// the fused source form, expert extents, store validation errors, convert errors, and that a
// partial output never appears under the final name.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "runtime/io/packed_store.h"
#include "runtime/io/safetensors.h"
#include "runtime/model/config.h"
#include "runtime/model/synthetic_model.h"
#include "runtime/quant/convert.h"
#include "tests/model/model_test_util.h"

namespace moe {
namespace {

namespace fs = std::filesystem;
using test::json;
using test::read_json;
using test::TempDir;
using test::write_json;

QuantizeOptions rtn() {
  QuantizeOptions o;
  o.quantizer = Quantizer::kRtn;
  return o;
}

std::vector<float> to_f32(const TensorView& v, int64_t offset_elems, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = load_as_f32(v.data, v.dtype, offset_elems + i);
  return out;
}

int64_t numel(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (const int64_t d : s) n *= d;
  return n;
}

fs::path partial_of(const fs::path& out) {
  return fs::path(out.string() + ".partial-" + std::to_string(::getpid()));
}

// Checks one stored tensor against its source values `w` (rows x k) under `choice`.
void expect_stored(const PackedTensor& t, const StorageChoice& choice, const std::vector<int64_t>& shape,
                   const std::vector<float>& w, const TensorView& src, const uint8_t* src_bytes, uint64_t src_nbytes,
                   const QuantizeOptions& opt) {
  SCOPED_TRACE(t.name);
  EXPECT_EQ(t.shape, shape);
  switch (choice.mode) {
    case StorageChoice::Mode::kKeep:
      EXPECT_FALSE(t.quant.has_value());
      EXPECT_EQ(t.dtype, src.dtype);
      ASSERT_EQ(t.bytes, src_nbytes);
      EXPECT_EQ(std::memcmp(t.data, src_bytes, src_nbytes), 0);
      break;
    case StorageChoice::Mode::kDense: {
      EXPECT_FALSE(t.quant.has_value());
      EXPECT_EQ(t.dtype, choice.dtype);
      ASSERT_EQ(t.bytes, static_cast<uint64_t>(numel(shape) * dtype_bits(choice.dtype) / 8));
      for (size_t i = 0; i < w.size(); ++i) {
        const float got = load_as_f32(t.data, t.dtype, static_cast<int64_t>(i));
        ASSERT_NEAR(got, w[i], std::abs(w[i]) * 1e-2f + 1e-6f) << i;
      }
      break;
    }
    case StorageChoice::Mode::kQuant: {
      ASSERT_TRUE(t.quant.has_value());
      EXPECT_EQ(*t.quant, choice.quant);
      const int64_t k = shape.back(), rows = numel(shape) / k;
      ASSERT_EQ(t.bytes, static_cast<uint64_t>(rows) * quant_row_bytes(choice.quant, k));
      // Exactly what quantize_rows makes of the source.
      std::vector<uint8_t> expect(t.bytes);
      quantize_rows(w.data(), rows, k, choice.quant, opt, expect.data());
      EXPECT_EQ(std::memcmp(t.data, expect.data(), t.bytes), 0);
      // And within the format's error bound: one quantization step of the group.
      std::vector<float> deq(w.size());
      dequantize_rows(t.data, rows, k, choice.quant, deq.data());
      const int32_t g = choice.quant.group_size;
      const double levels = std::pow(2.0, quant_bits(choice.quant.type)) - 1.0;
      for (size_t b = 0; b < w.size(); b += static_cast<size_t>(g)) {
        const auto [lo, hi] = std::minmax_element(w.begin() + static_cast<std::ptrdiff_t>(b),
                                                  w.begin() + static_cast<std::ptrdiff_t>(b) + g);
        const double step = (*hi - *lo) / levels;
        for (size_t i = b; i < b + static_cast<size_t>(g); ++i)
          ASSERT_LE(std::abs(static_cast<double>(deq[i]) - w[i]), step * 1.01 + 1e-6) << "element " << i;
      }
      break;
    }
  }
}

// Every tensor of the source checkpoint is in the store, stored as the recipe says.
void expect_round_trip(const fs::path& hf, const fs::path& out, const QuantRecipe& recipe, const QuantizeOptions& opt) {
  const PackedStore store = PackedStore::open(out, /*verify=*/true);
  const SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open(hf);
  const ModelConfig c = load_model_config(hf);
  EXPECT_EQ(store.recipe(), recipe.spec());
  EXPECT_EQ(store.source_config(), read_json(hf / "config.json"));
  const std::vector<std::string> names = ckpt.tensor_names();
  EXPECT_EQ(store.tensor_names(), names);  // per-expert sources keep their names
  for (const std::string& name : names) {
    const TensorView v = ckpt.tensor(name);
    const PackedTensor t = store.tensor(name);
    expect_stored(t, recipe.choice(classify_tensor(name, *c.arch)), v.shape, to_f32(v, 0, v.numel()), v,
                  static_cast<const uint8_t*>(v.data), v.nbytes, opt);
  }
  // Expert extents: 4 KiB aligned, gate/up/down back to back, in (layer, expert) order.
  int64_t moe_layers = 0;
  for (const bool m : c.layer_is_moe) moe_layers += m ? 1 : 0;
  ASSERT_EQ(static_cast<int64_t>(store.experts().size()), moe_layers * c.num_experts);
  uint64_t prev_end = 0;
  for (const ExpertExtent& x : store.experts()) {
    SCOPED_TRACE(testing::Message() << "expert " << x.layer << "." << x.expert);
    EXPECT_EQ(x.offset % 4096, 0u);
    EXPECT_GE(x.offset, prev_end);
    prev_end = x.offset + x.bytes;
    const std::string p = str_cat("model.layers.", x.layer, ".", c.arch->moe_block, ".experts.", x.expert, ".");
    const PackedTensor g = store.tensor(p + std::string(c.arch->expert_gate) + ".weight");
    const PackedTensor u = store.tensor(p + std::string(c.arch->expert_up) + ".weight");
    const PackedTensor d = store.tensor(p + std::string(c.arch->expert_down) + ".weight");
    EXPECT_EQ(u.data, g.data + g.bytes);
    EXPECT_EQ(d.data, u.data + u.bytes);
    EXPECT_EQ(x.bytes, g.bytes + u.bytes + d.bytes);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(g.data) % 4096, 0u);  // the map is page aligned
  }
  // Dense tensors 64-byte aligned; copied files present.
  for (const std::string& name : store.tensor_names())
    EXPECT_EQ(reinterpret_cast<uintptr_t>(store.tensor(name).data) % 64, 0u) << name;
  EXPECT_TRUE(fs::exists(out / "config.json"));
  EXPECT_TRUE(fs::exists(out / "generation_config.json"));
  EXPECT_FALSE(fs::exists(partial_of(out)));
  const json m = read_json(out / "manifest.json");
  EXPECT_EQ(m["format"], "moe-packed");
  EXPECT_EQ(m["version"], 1);
  EXPECT_TRUE(m["created_by"].get<std::string>().starts_with("moe-runtime "));
  EXPECT_EQ(m["source"]["dir"], fs::absolute(hf).lexically_normal().string());
}

class ConvertArch : public ::testing::TestWithParam<std::string> {};

TEST_P(ConvertArch, RoundTripsEveryRecipe) {
  TempDir dir;
  SyntheticModelSpec spec = tiny_model_spec(GetParam());
  spec.qkv_bias = true;
  write_synthetic_model(spec, dir / "hf");
  for (const char* r : {"keep", "q8", "mixed-4-2", "attn=bf16,router=f16,experts=q3g32,shared=f32,dense=q8g32"}) {
    SCOPED_TRACE(r);
    const QuantRecipe recipe = QuantRecipe::parse(r);
    const fs::path out = dir / (std::string("store-") + r);
    std::vector<ConvertProgress> calls;
    const ConvertStats stats =
        convert_checkpoint(dir / "hf", recipe, rtn(), out, [&](const ConvertProgress& p) { calls.push_back(p); });
    expect_round_trip(dir / "hf", out, recipe, rtn());
    const SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open(dir / "hf");
    EXPECT_EQ(stats.source_bytes, ckpt.total_bytes());
    EXPECT_EQ(stats.tensors, static_cast<int64_t>(ckpt.tensor_names().size()));
    EXPECT_EQ(stats.output_bytes, fs::file_size(out / "dense.bin") + fs::file_size(out / "experts.bin"));
    ASSERT_FALSE(calls.empty());
    EXPECT_EQ(calls.back().bytes_done, calls.back().bytes_total);
    EXPECT_EQ(calls.back().bytes_total, ckpt.total_bytes());
    for (size_t i = 1; i < calls.size(); ++i) EXPECT_GE(calls[i].bytes_done, calls[i - 1].bytes_done);
    if (recipe.choice(TensorKind::kExpert).mode == StorageChoice::Mode::kQuant) {
      ASSERT_TRUE(stats.relative_error.contains("experts"));
      EXPECT_GT(stats.relative_error.at("experts"), 0.0);
      EXPECT_LT(stats.relative_error.at("experts"), 0.5);
    }
    if (std::string(r) == "keep") {
      EXPECT_TRUE(stats.relative_error.empty());
    }
  }
}

TEST_P(ConvertArch, HqqStoresWhatQuantizeRowsMakes) {
  TempDir dir;
  write_synthetic_model(tiny_model_spec(GetParam()), dir / "hf");
  const QuantRecipe recipe = QuantRecipe::parse("experts=q4g64");
  const QuantizeOptions hqq;  // the default quantizer
  convert_checkpoint(dir / "hf", recipe, hqq, dir / "out");
  const PackedStore store = PackedStore::open(dir / "out");
  const SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open(dir / "hf");
  const ModelConfig c = load_model_config(dir / "hf");
  const std::string name = str_cat("model.layers.", GetParam() == "qwen2_moe" ? 1 : 0, ".", c.arch->moe_block,
                                   ".experts.3.", c.arch->expert_down, ".weight");
  const TensorView v = ckpt.tensor(name);
  const PackedTensor t = store.tensor(name);
  const std::vector<float> w = to_f32(v, 0, v.numel());
  std::vector<uint8_t> expect(t.bytes);
  quantize_rows(w.data(), v.shape[0], v.shape[1], QuantFormat{QuantType::kQ4, 64}, hqq, expect.data());
  EXPECT_EQ(std::memcmp(t.data, expect.data(), t.bytes), 0);
  EXPECT_EQ(read_json(dir / "out" / "manifest.json")["quantizer"]["name"], "hqq");
}

INSTANTIATE_TEST_SUITE_P(AllArchitectures, ConvertArch,
                         ::testing::Values("mixtral", "qwen2_moe", "qwen3_moe", "olmoe"));

const fs::path kFused = fs::path(MOE_TEST_DATA_DIR) / "golden" / "mixtral_window_fused_f32";

TEST(ConvertFused, SplitsIntoPerExpertHubNames) {
  TempDir dir;
  const QuantRecipe recipe = QuantRecipe::parse("attn=q4g32,experts=q4g32");
  const ConvertStats stats = convert_checkpoint(kFused, recipe, rtn(), dir / "out");
  EXPECT_EQ(stats.experts, 16);
  const PackedStore store = PackedStore::open(dir / "out");
  const SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open(kFused);
  for (const std::string& name : store.tensor_names()) {
    EXPECT_EQ(name.find(".mlp."), std::string::npos) << name;  // everything under the Hub's block_sparse_moe
    if (name.find(".experts.") != std::string::npos) {
      EXPECT_TRUE(name.ends_with(".w1.weight") || name.ends_with(".w2.weight") || name.ends_with(".w3.weight")) << name;
    }
  }
  for (int64_t layer = 0; layer < 2; ++layer) {
    const std::string src = str_cat("model.layers.", layer, ".mlp.");
    EXPECT_TRUE(store.contains(str_cat("model.layers.", layer, ".block_sparse_moe.gate.weight")));
    const TensorView gu = ckpt.tensor(src + "experts.gate_up_proj");  // (8, 64, 64)
    const TensorView down = ckpt.tensor(src + "experts.down_proj");   // (8, 64, 32)
    const int64_t inter = gu.shape[1] / 2, hidden = gu.shape[2];
    for (int64_t e = 0; e < 8; ++e) {
      const std::string p = str_cat("model.layers.", layer, ".block_sparse_moe.experts.", e, ".");
      const StorageChoice q = recipe.choice(TensorKind::kExpert);
      const uint64_t four = 4;
      const auto* gub = static_cast<const uint8_t*>(gu.data);
      const auto* db = static_cast<const uint8_t*>(down.data);
      const int64_t gsz = inter * hidden;
      expect_stored(store.tensor(p + "w1.weight"), q, {inter, hidden}, to_f32(gu, e * 2 * gsz, gsz), gu,
                    gub + static_cast<uint64_t>(e * 2 * gsz) * four, static_cast<uint64_t>(gsz) * four, rtn());
      expect_stored(store.tensor(p + "w3.weight"), q, {inter, hidden}, to_f32(gu, e * 2 * gsz + gsz, gsz), gu,
                    gub + static_cast<uint64_t>(e * 2 * gsz + gsz) * four, static_cast<uint64_t>(gsz) * four, rtn());
      expect_stored(store.tensor(p + "w2.weight"), q, {hidden, inter}, to_f32(down, e * gsz, gsz), down,
                    db + static_cast<uint64_t>(e * gsz) * four, static_cast<uint64_t>(gsz) * four, rtn());
    }
  }
}

TEST(ConvertFused, KeepCopiesTheSlicesExactly) {
  TempDir dir;
  convert_checkpoint(kFused, QuantRecipe::parse("keep"), rtn(), dir / "out");
  const PackedStore store = PackedStore::open(dir / "out");
  const SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open(kFused);
  const TensorView gu = ckpt.tensor("model.layers.1.mlp.experts.gate_up_proj");
  const PackedTensor up5 = store.tensor("model.layers.1.block_sparse_moe.experts.5.w3.weight");
  EXPECT_EQ(up5.shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(up5.dtype, DType::kF32);
  ASSERT_EQ(up5.bytes, 32u * 64u * 4u);
  EXPECT_EQ(std::memcmp(up5.data, static_cast<const uint8_t*>(gu.data) + (5 * 64 + 32) * 64 * 4, up5.bytes), 0);
  // 2 layers x (4 attention + 2 norms + router) + embed + norm + lm_head + 2 x 8 x 3 experts.
  EXPECT_EQ(store.tensor_names().size(), 2u * 7u + 3u + 48u);
}

// ---- convert errors ----

class ConvertErrors : public ::testing::Test {
 protected:
  void SetUp() override { write_synthetic_model(tiny_model_spec("mixtral"), dir_ / "hf"); }
  fs::path hf() const { return dir_ / "hf"; }
  TempDir dir_;
};

TEST_F(ConvertErrors, OutputExists) {
  fs::create_directories(dir_ / "out");
  test::write_text(dir_ / "out" / "marker", "old");
  EXPECT_ERROR_CONTAINS(convert_checkpoint(hf(), QuantRecipe::parse("keep"), rtn(), dir_ / "out"),
                        {(dir_ / "out").string(), "already exists"});
  EXPECT_TRUE(fs::exists(dir_ / "out" / "marker"));
  EXPECT_FALSE(fs::exists(partial_of(dir_ / "out")));
  // replace: the old output is replaced once the new one is complete.
  convert_checkpoint(hf(), QuantRecipe::parse("q8"), rtn(), dir_ / "out", {}, /*replace=*/true);
  EXPECT_FALSE(fs::exists(dir_ / "out" / "marker"));
  EXPECT_FALSE(fs::exists(partial_of(dir_ / "out")));
  EXPECT_EQ(PackedStore::open(dir_ / "out").recipe(), QuantRecipe::parse("q8").spec());
}

TEST_F(ConvertErrors, UnquantizableRowLength) {
  // hidden_size 64: the experts' gate rows hold 64 weights, not a multiple of 128.
  EXPECT_ERROR_CONTAINS(convert_checkpoint(hf(), QuantRecipe::parse("experts=q4g128"), rtn(), dir_ / "out"),
                        {"model.layers.0.block_sparse_moe.experts.0.w1.weight", "[128, 64]", "q4g128",
                         "not a multiple of the group size 128"});
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  EXPECT_FALSE(fs::exists(partial_of(dir_ / "out")));
  // The fused golden model: down_proj rows of 32 under q8 (g64).
  EXPECT_ERROR_CONTAINS(convert_checkpoint(kFused, QuantRecipe::parse("q8"), rtn(), dir_ / "out2"),
                        {"model.layers.0.block_sparse_moe.experts.0.w2.weight", "[64, 32]", "q8g64"});
}

TEST_F(ConvertErrors, NotAModel) {
  EXPECT_ERROR_CONTAINS(convert_checkpoint(dir_ / "missing", QuantRecipe::parse("keep"), rtn(), dir_ / "out"),
                        {"config.json"});
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

struct StopNow {};

TEST_F(ConvertErrors, PartialOutputNeverAppearsUnderTheFinalName) {
  const fs::path out = dir_ / "out";
  int calls = 0;
  bool saw_partial = false;
  bool old_output = false;  // second round: `out` holds a complete older store
  auto stop_midway = [&](const ConvertProgress& p) {
    ++calls;
    // Mid-way, only the partial directory exists, and it holds no manifest.
    EXPECT_EQ(fs::exists(out), old_output);
    if (old_output) {
      EXPECT_TRUE(fs::exists(out / "manifest.json"));
    }
    EXPECT_TRUE(fs::is_directory(partial_of(out)));
    EXPECT_FALSE(fs::exists(partial_of(out) / "manifest.json"));
    saw_partial = saw_partial || fs::exists(partial_of(out) / "dense.bin");
    if (p.tensor.find(".experts.3.") != std::string::npos) throw StopNow{};  // e.g. Ctrl-C
  };
  EXPECT_THROW(convert_checkpoint(hf(), QuantRecipe::parse("mixed-4-2"), rtn(), out, stop_midway), StopNow);
  EXPECT_GT(calls, 10);
  EXPECT_TRUE(saw_partial);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(partial_of(out)));
  for (const auto& e : fs::directory_iterator(dir_.path()))
    EXPECT_EQ(e.path().filename().string().find("out"), std::string::npos) << e.path();

  // With replace, a failed conversion leaves the old output untouched.
  convert_checkpoint(hf(), QuantRecipe::parse("keep"), rtn(), out);
  old_output = true;
  EXPECT_THROW(convert_checkpoint(hf(), QuantRecipe::parse("q4"), rtn(), out, stop_midway, true), StopNow);
  EXPECT_EQ(PackedStore::open(out).recipe(), "keep");
  EXPECT_FALSE(fs::exists(partial_of(out)));
}

// ---- store validation ----

class StoreErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    write_synthetic_model(tiny_model_spec("mixtral"), dir_ / "hf");
    convert_checkpoint(dir_ / "hf", QuantRecipe::parse("mixed-4-2"), rtn(), store());
    manifest_ = read_json(store() / "manifest.json");
  }
  fs::path store() const { return dir_ / "store"; }
  void rewrite(const std::function<void(json&)>& edit) {
    json m = manifest_;
    edit(m);
    write_json(store() / "manifest.json", m);
  }
  TempDir dir_;
  json manifest_;
};

TEST_F(StoreErrors, OpensCleanly) {
  EXPECT_TRUE(PackedStore::is_packed(store()));
  EXPECT_FALSE(PackedStore::is_packed(dir_ / "hf"));
  const PackedStore s = PackedStore::open(store());
  EXPECT_EQ(s.dir(), store());
  EXPECT_TRUE(s.contains("model.embed_tokens.weight"));
  EXPECT_FALSE(s.contains("nope"));
  EXPECT_ERROR_CONTAINS(s.tensor("nope"), {"'nope'", "not found"});
}

TEST_F(StoreErrors, MissingManifest) {
  fs::remove(store() / "manifest.json");
  EXPECT_ERROR_CONTAINS(PackedStore::open(store()), {store().string(), "manifest.json", "missing"});
}

TEST_F(StoreErrors, InvalidJson) {
  test::write_text(store() / "manifest.json", "{\"format\": \"moe-packed\", ");
  EXPECT_ERROR_CONTAINS(PackedStore::open(store()), {"manifest.json", "invalid JSON"});
}

TEST_F(StoreErrors, WrongFormatName) {
  rewrite([](json& m) { m["format"] = "gguf"; });
  EXPECT_ERROR_CONTAINS(PackedStore::open(store()), {"manifest.json", "'gguf'", "moe-packed"});
}

TEST_F(StoreErrors, NewerVersion) {
  rewrite([](json& m) { m["version"] = 7; });
  EXPECT_ERROR_CONTAINS(PackedStore::open(store()),
                        {"manifest.json", "written by a newer moe (format version 7; this build reads up to 1)"});
}

TEST_F(StoreErrors, TruncatedExperts) {
  fs::resize_file(store() / "experts.bin", fs::file_size(store() / "experts.bin") / 2);
  EXPECT_ERROR_CONTAINS(PackedStore::open(store(), false), {"experts.bin", "truncated"});
}

TEST_F(StoreErrors, TruncatedDense) {
  fs::resize_file(store() / "dense.bin", fs::file_size(store() / "dense.bin") - 1);
  EXPECT_ERROR_CONTAINS(PackedStore::open(store(), false), {"dense.bin", "truncated", "lm_head.weight"});
}

TEST_F(StoreErrors, FlippedByteIsAChecksumMismatchNamingTheTensor) {
  const std::string name = "model.layers.1.self_attn.v_proj.weight";
  uint64_t offset = 0;
  for (const json& t : manifest_["tensors"])
    if (t["name"] == name) offset = t["offset"].get<uint64_t>();
  ASSERT_GT(offset, 0u);
  {
    std::fstream f(store() / "dense.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset + 5));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x10);
    f.seekp(static_cast<std::streamoff>(offset + 5));
    f.write(&c, 1);
  }
  EXPECT_ERROR_CONTAINS(PackedStore::open(store()), {"dense.bin", "checksum mismatch", "'" + name + "'"});
  EXPECT_NO_THROW(PackedStore::open(store(), /*verify=*/false));
}

TEST_F(StoreErrors, ExtentOutOfBounds) {
  rewrite([](json& m) { m["experts"][3]["offset"] = 4096 * 100000; });
  EXPECT_ERROR_CONTAINS(PackedStore::open(store(), false), {"experts.bin", "expert 0.3", "409600000"});
}

TEST_F(StoreErrors, TensorOutOfBounds) {
  rewrite([](json& m) { m["tensors"][2]["offset"] = uint64_t{1} << 40; });
  EXPECT_ERROR_CONTAINS(PackedStore::open(store(), false),
                        {"dense.bin", manifest_["tensors"][2]["name"].get<std::string>()});
}

TEST_F(StoreErrors, MisalignedExtent) {
  rewrite([](json& m) { m["experts"][1]["offset"] = m["experts"][1]["offset"].get<uint64_t>() + 64; });
  EXPECT_ERROR_CONTAINS(PackedStore::open(store(), false), {"expert 0.1", "4096-byte aligned"});
}

TEST_F(StoreErrors, OverlappingTensors) {
  rewrite([](json& m) {
    m["tensors"][1]["offset"] = m["tensors"][0]["offset"];
    m["tensors"][1]["bytes"] = m["tensors"][0]["bytes"];
    m["tensors"][1]["shape"] = m["tensors"][0]["shape"];
    m["tensors"][1]["storage"] = m["tensors"][0]["storage"];
  });
  EXPECT_ERROR_CONTAINS(PackedStore::open(store(), false), {"dense.bin", "overlaps"});
}

TEST_F(StoreErrors, UnknownStorage) {
  rewrite([](json& m) { m["tensors"][0]["storage"] = "q5g64"; });
  EXPECT_ERROR_CONTAINS(PackedStore::open(store(), false), {"model.embed_tokens.weight", "unknown storage 'q5g64'"});
}

TEST_F(StoreErrors, ShapeInconsistentWithBytes) {
  rewrite([](json& m) {
    for (json& t : m["tensors"])
      if (t["storage"] == "q2g16") {
        t["shape"][0] = t["shape"][0].get<int64_t>() + 1;
        break;
      }
  });
  EXPECT_ERROR_CONTAINS(PackedStore::open(store(), false), {"stored as q2g16 needs", "the manifest says"});
}

TEST_F(StoreErrors, MissingField) {
  rewrite([](json& m) { m["tensors"][0].erase("xxh3"); });
  EXPECT_ERROR_CONTAINS(PackedStore::open(store(), false), {"tensors[0]", "\"xxh3\""});
}

TEST_F(StoreErrors, MissingDataFile) {
  fs::remove(store() / "experts.bin");
  EXPECT_ERROR_CONTAINS(PackedStore::open(store(), false), {"experts.bin", "missing"});
}

}  // namespace
}  // namespace moe

// write_synthetic_packed_store: a random model written straight into a packed store has exactly
// the tensors (names, shapes, storage) that `moe convert` makes of the same synthetic checkpoint,
// loads (checksums verified), generates finite logits, and refuses what the recipe cannot hold.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"
#include "runtime/engine/generator.h"
#include "runtime/io/packed_store.h"
#include "runtime/model/model.h"
#include "runtime/model/synthetic_model.h"
#include "runtime/quant/convert.h"
#include "runtime/quant/synthetic_store.h"
#include "tests/model/model_test_util.h"

namespace moe {
namespace {

class SyntheticStore : public ::testing::TestWithParam<std::string> {};

TEST_P(SyntheticStore, SameTensorsAsConvertAndGenerates) {
  for (const char* recipe : {"q4", "mixed-4-2", "attn=q8,experts=q3"}) {
    SCOPED_TRACE(GetParam() + " " + recipe);
    SyntheticModelSpec spec = tiny_model_spec(GetParam());
    spec.expert_intermediate = 128;
    test::TempDir dir;
    write_synthetic_model(spec, dir.path() / "hf");
    const QuantRecipe r = QuantRecipe::parse(recipe);
    convert_checkpoint(dir.path() / "hf", r, QuantizeOptions{}, dir.path() / "converted");
    const SyntheticStoreStats stats = write_synthetic_packed_store(spec, r, dir.path() / "direct");

    const PackedStore a = PackedStore::open(dir.path() / "converted");
    const PackedStore b = PackedStore::open(dir.path() / "direct");  // checksums verified
    ASSERT_EQ(a.tensor_names(), b.tensor_names());
    for (const std::string& name : a.tensor_names()) {
      const PackedTensor ta = a.tensor(name), tb = b.tensor(name);
      EXPECT_EQ(ta.shape, tb.shape) << name;
      EXPECT_EQ(ta.quant, tb.quant) << name;
      if (!ta.quant) {
        EXPECT_EQ(ta.dtype, tb.dtype) << name;
      }
      EXPECT_EQ(ta.bytes, tb.bytes) << name;
    }
    ASSERT_EQ(a.experts().size(), b.experts().size());
    EXPECT_EQ(stats.experts, static_cast<int64_t>(b.experts().size()));
    EXPECT_EQ(b.recipe(), r.spec());
    EXPECT_EQ(b.source_config(), a.source_config());

    CpuBackend backend(1);
    std::unique_ptr<Model> m = Model::load(dir.path() / "direct", backend);
    Transformer t(m->config(), m->weights(), m->layout(), backend, 4);
    KvCache cache(backend, m->config(), m->layout(), 32);
    GenerationOptions g;
    g.max_new_tokens = 6;
    g.keep_logits = true;
    const std::vector<int32_t> prompt = {1, 7, 42, 99, 5};
    const GenerationResult out = generate(t, cache, m->config().vocab_size, prompt, g);
    EXPECT_EQ(out.tokens.size(), 6u);
    ASSERT_FALSE(out.logits.empty());
    double spread = 0;
    for (const float v : out.logits) {
      ASSERT_TRUE(std::isfinite(v));
      spread = std::max(spread, std::fabs(static_cast<double>(v - out.logits[0])));
    }
    EXPECT_GT(spread, 1e-3);  // not a constant: the random weights reach the logits
  }
}

INSTANTIATE_TEST_SUITE_P(Architectures, SyntheticStore,
                         ::testing::Values("mixtral", "qwen2_moe", "qwen3_moe", "olmoe"));

TEST(SyntheticStoreErrors, GroupSizeThatDoesNotDivideTheRows) {
  SyntheticModelSpec spec = tiny_model_spec("mixtral");
  spec.expert_intermediate = 96;  // w2 (down) rows of 96 weights: not a multiple of 64
  test::TempDir dir;
  try {
    write_synthetic_packed_store(spec, QuantRecipe::parse("experts=q4g64"), dir.path() / "s");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("experts.0.w2.weight' has rows of 96 weights, not a multiple of q4g64's "
                                         "group size 64"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "s"));  // no partial store left behind
}

}  // namespace
}  // namespace moe

// moe make-tiny: writes the embedded default model (random weights, real HF layout).
#include <cstddef>
#include <cstdio>
#include <filesystem>

#include "launch/commands.h"
#include "runtime/core/error.h"
#include "runtime/io/atomic_file.h"
#include "runtime/model/config.h"
#include "runtime/model/synthetic_model.h"
#include "runtime/tokenizer/tokenizer.h"

namespace moe::assets {
// launch/assets/, embedded by cmake/EmbedFile.cmake.
extern const unsigned char tiny_tokenizer_json[];
extern const std::size_t tiny_tokenizer_json_size;
extern const unsigned char tiny_tokenizer_config_json[];
extern const std::size_t tiny_tokenizer_config_json_size;
}  // namespace moe::assets

namespace moe::cli {
namespace {

void write_file(const std::filesystem::path& path, const std::string& bytes) {
  AtomicFile out(path);
  out.write(bytes.data(), bytes.size());
  out.commit();
}

}  // namespace

Action add_make_tiny_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "make-tiny",
      "Write a small random-weight model in the Hugging Face layout (config.json, generation_config.json,\n"
      "model.safetensors, tokenizer.json, tokenizer_config.json with the Mixtral-Instruct chat template) for\n"
      "trying the runtime without downloading anything. Its text is gibberish: the weights are random.");
  struct Options {
    std::string arch = "mixtral";
    std::string out;
    uint64_t seed = 0;
    std::string dtype = "bf16";
    int64_t layers = 0;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("--arch", o->arch, "Architecture: mixtral, qwen2_moe, qwen3_moe or olmoe")->capture_default_str();
  cmd->add_option("--out", o->out, "Output directory (created)")->required();
  cmd->add_option("--seed", o->seed, "Random seed for the weights")->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "Weight dtype: bf16, f16 or f32")->capture_default_str();
  cmd->add_option("--layers", o->layers, "Number of layers (default: the architecture's tiny default)");
  return [o] {
    SyntheticModelSpec spec = tiny_model_spec(o->arch);
    spec.seed = o->seed;
    if (o->dtype == "bf16")
      spec.dtype = DType::kBF16;
    else if (o->dtype == "f16")
      spec.dtype = DType::kF16;
    else if (o->dtype == "f32")
      spec.dtype = DType::kF32;
    else
      fail("--dtype must be bf16, f16 or f32, got '", o->dtype, "'");
    if (o->layers > 0) spec.num_layers = o->layers;
    // The embedded tokenizer decides the vocabulary; <s> and </s> are BOS and EOS.
    const std::string tokenizer_json(reinterpret_cast<const char*>(assets::tiny_tokenizer_json),
                                     assets::tiny_tokenizer_json_size);
    const std::string config_json(reinterpret_cast<const char*>(assets::tiny_tokenizer_config_json),
                                  assets::tiny_tokenizer_config_json_size);
    const Tokenizer tokenizer = Tokenizer::from_json(tokenizer_json, config_json, "embedded tiny tokenizer");
    spec.vocab_size = tokenizer.vocab_size();
    spec.bos_token_id = tokenizer.bos_id().value_or(1);
    spec.eos_token_id = tokenizer.eos_id().value_or(2);
    const int64_t params = write_synthetic_model(spec, o->out);
    write_file(std::filesystem::path(o->out) / "tokenizer.json", tokenizer_json);
    write_file(std::filesystem::path(o->out) / "tokenizer_config.json", config_json);
    const ModelConfig c = load_model_config(o->out);
    std::printf("wrote %s: %s, %.2f M parameters (%s)\n", o->out.c_str(), c.summary().c_str(),
                static_cast<double>(params) / 1e6, o->dtype.c_str());
    return 0;
  };
}

}  // namespace moe::cli

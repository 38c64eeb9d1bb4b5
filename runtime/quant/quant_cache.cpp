#include "runtime/quant/quant_cache.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/io/packed_store.h"

namespace moe {
namespace {

namespace fs = std::filesystem;

// FNV-1a 64: stable across builds and platforms, enough for a cache key.
struct Fnv64 {
  uint64_t h = 0xcbf29ce484222325ull;
  void add(std::string_view s) {
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    h = (h ^ 0xff) * 0x100000001b3ull;  // separator
  }
};

std::string hex(uint64_t v) {
  static const char* digits = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) s[static_cast<size_t>(i)] = digits[v & 0xf];
  return s;
}

std::string quantizer_name(Quantizer q) {
  switch (q) {
    case Quantizer::kRtn: return "rtn";
    case Quantizer::kHqq: return "hqq";
  }
  return "?";
}

}  // namespace

fs::path quant_cache_root() {
  if (const char* d = std::getenv("MOE_CACHE_DIR"); d && *d) return d;
  if (const char* d = std::getenv("XDG_CACHE_HOME"); d && *d) return fs::path(d) / "moe";
  if (const char* d = std::getenv("HOME"); d && *d) return fs::path(d) / ".cache" / "moe";
  return ".moe-cache";
}

fs::path quant_cache_path(const fs::path& hf_dir, const QuantRecipe& recipe, const QuantizeOptions& options) {
  std::error_code ec;
  const fs::path source = fs::weakly_canonical(hf_dir, ec);
  Fnv64 key;
  key.add(source.string());
  key.add(recipe.spec());
  key.add(quantizer_name(options.quantizer));
  key.add(std::to_string(options.hqq_iterations));
  key.add(std::to_string(PackedStore::kFormatVersion));
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(source, ec)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || !(name.ends_with(".safetensors") || name.ends_with(".json"))) continue;
    const auto mtime = fs::last_write_time(e.path(), ec).time_since_epoch().count();
    files.push_back(str_cat(name, ":", e.file_size(ec), ":", mtime));
  }
  std::sort(files.begin(), files.end());
  for (const std::string& f : files) key.add(f);
  std::string label = source.filename().string() + "-" + recipe.spec() + "-" + quantizer_name(options.quantizer);
  for (char& c : label)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') c = '_';
  if (label.size() > 80) label.resize(80);
  return quant_cache_root() / (label + "-" + hex(key.h));
}

fs::path cached_packed_model(const fs::path& hf_dir, const QuantRecipe& recipe, const QuantizeOptions& options,
                             const std::function<void(const ConvertProgress&)>& progress, bool* converted) {
  const fs::path dir = quant_cache_path(hf_dir, recipe, options);
  if (converted) *converted = false;
  if (PackedStore::is_packed(dir)) return dir;
  std::error_code ec;
  fs::create_directories(dir.parent_path(), ec);
  MOE_CHECK(!ec, dir.parent_path().string(), ": cannot create the quantization cache (", ec.message(),
            "); set MOE_CACHE_DIR to a writable directory");
  // A stale directory without a manifest is an interrupted conversion of an older build's.
  if (fs::exists(dir)) fs::remove_all(dir, ec);
  try {
    convert_checkpoint(hf_dir, recipe, options, dir, progress);
  } catch (const Error&) {
    if (PackedStore::is_packed(dir)) return dir;  // another process finished first
    throw;
  }
  if (converted) *converted = true;
  return dir;
}

}  // namespace moe

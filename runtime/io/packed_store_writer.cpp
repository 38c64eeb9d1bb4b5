#include "runtime/io/packed_store_writer.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <utility>

#include "runtime/core/error.h"
#include "runtime/io/packed_store.h"

namespace moe {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail_errno(const fs::path& path, const char* what) {
  const int err = errno;
  fail(path.string(), ": ", what, ": ", std::strerror(err));
}

void fsync_path(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) fail_errno(path, "cannot open for fsync");
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    errno = err;
    fail_errno(path, "fsync failed");
  }
  ::close(fd);
}

void write_all(int fd, const fs::path& path, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fail_errno(path, "write failed");
    p += w;
    n -= static_cast<size_t>(w);
  }
}

std::string hex64(uint64_t v) {
  std::array<char, 17> buf{};
  std::snprintf(buf.data(), buf.size(), "%016llx", static_cast<unsigned long long>(v));
  return std::string(buf.data(), 16);
}

}  // namespace

std::string packed_storage_name(DType dtype, const std::optional<QuantFormat>& quant) {
  return quant ? quant_format_name(*quant) : std::string(dtype_name(dtype));
}

// One output data file, written sequentially.
class PackedStoreWriter::DataFile {
 public:
  DataFile(fs::path path, std::string name) : path_(std::move(path)), name_(std::move(name)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail_errno(path_, "cannot create");
  }
  ~DataFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  DataFile(const DataFile&) = delete;
  DataFile& operator=(const DataFile&) = delete;

  void write(const void* data, size_t n) {
    write_all(fd_, path_, data, n);
    pos_ += n;
  }
  void pad_to(uint64_t align) {
    static constexpr std::array<uint8_t, 4096> kZeros{};
    uint64_t pad = (align - pos_ % align) % align;
    while (pad > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(pad, kZeros.size()));
      write(kZeros.data(), n);
      pad -= n;
    }
  }
  void sync_and_close() {
    if (fd_ < 0) return;
    if (::fsync(fd_) != 0) fail_errno(path_, "fsync failed");
    const int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) fail_errno(path_, "close failed");
  }
  uint64_t pos() const { return pos_; }
  const std::string& name() const { return name_; }

 private:
  fs::path path_;
  std::string name_;
  int fd_ = -1;
  uint64_t pos_ = 0;
};

struct PackedStoreWriter::HashState {
  XXH3_state_t* s = nullptr;
  HashState() : s(XXH3_createState()) { MOE_CHECK(s != nullptr, "PackedStoreWriter: out of memory (xxh3 state)"); }
  ~HashState() { XXH3_freeState(s); }
  HashState(const HashState&) = delete;
  HashState& operator=(const HashState&) = delete;
};

PackedStoreWriter::PackedStoreWriter(const fs::path& out, bool replace) : replace_(replace) {
  out_ = out.lexically_normal();
  if (out_.filename().empty()) out_ = out_.parent_path();
  MOE_CHECK(!out_.empty(), "packed store: empty output path");
  std::error_code ec;
  if (!replace_ && fs::exists(fs::symlink_status(out_, ec)))
    fail(out_.string(), ": already exists; remove it first (moe convert --force replaces it)");
  if (out_.has_parent_path()) {
    fs::create_directories(out_.parent_path(), ec);
    if (ec) fail(out_.parent_path().string(), ": cannot create directory: ", ec.message());
  }
  partial_ = fs::path(str_cat(out_.string(), ".partial-", ::getpid()));
  fs::remove_all(partial_, ec);
  if (!fs::create_directory(partial_, ec) || ec)
    fail(partial_.string(), ": cannot create directory: ", ec ? ec.message() : "it already exists");
  try {
    dense_ = std::make_unique<DataFile>(partial_ / "dense.bin", "dense.bin");
    expert_file_ = std::make_unique<DataFile>(partial_ / "experts.bin", "experts.bin");
    hash_ = std::make_unique<HashState>();
  } catch (...) {
    dense_.reset();
    expert_file_.reset();
    fs::remove_all(partial_, ec);
    throw;
  }
}

PackedStoreWriter::~PackedStoreWriter() {
  dense_.reset();
  expert_file_.reset();
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(partial_, ec);
  }
}

void PackedStoreWriter::begin_tensor(std::string name, std::vector<int64_t> shape, DType dtype,
                                     std::optional<QuantFormat> quant, uint64_t bytes) {
  MOE_CHECK(current_ == nullptr, "PackedStoreWriter: tensor '", name, "' begun while '", pending_.name,
            "' is unfinished");
  current_ = in_expert_ ? expert_file_.get() : dense_.get();
  if (!in_expert_) current_->pad_to(kDenseAlign);
  pending_ = Entry{.name = std::move(name),
                   .shape = std::move(shape),
                   .storage = packed_storage_name(dtype, quant),
                   .file = current_->name(),
                   .offset = current_->pos(),
                   .bytes = bytes,
                   .xxh3 = 0};
  appended_ = 0;
  MOE_CHECK(XXH3_64bits_reset(hash_->s) == XXH_OK, "PackedStoreWriter: xxh3 reset failed");
}

void PackedStoreWriter::append(const void* data, size_t n) {
  MOE_CHECK(current_ != nullptr, "PackedStoreWriter: append outside a tensor");
  MOE_CHECK(appended_ + n <= pending_.bytes, "PackedStoreWriter: tensor '", pending_.name, "': ", appended_ + n,
            " bytes appended, more than the ", pending_.bytes, " announced");
  current_->write(data, n);
  XXH3_64bits_update(hash_->s, data, n);
  appended_ += n;
}

void PackedStoreWriter::end_tensor() {
  MOE_CHECK(current_ != nullptr, "PackedStoreWriter: end_tensor outside a tensor");
  MOE_CHECK(appended_ == pending_.bytes, "PackedStoreWriter: tensor '", pending_.name, "': ", appended_,
            " bytes appended, ", pending_.bytes, " announced");
  pending_.xxh3 = XXH3_64bits_digest(hash_->s);
  tensors_.push_back(std::move(pending_));
  pending_ = Entry{};
  current_ = nullptr;
}

void PackedStoreWriter::write_tensor(std::string name, std::vector<int64_t> shape, DType dtype,
                                     std::optional<QuantFormat> quant, const void* data, uint64_t bytes) {
  begin_tensor(std::move(name), std::move(shape), dtype, quant, bytes);
  append(data, static_cast<size_t>(bytes));
  end_tensor();
}

void PackedStoreWriter::begin_expert(int64_t layer, int64_t expert) {
  MOE_CHECK(!in_expert_ && current_ == nullptr, "PackedStoreWriter: expert ", layer, ".", expert,
            " begun inside another expert or tensor");
  expert_file_->pad_to(kExpertAlign);
  in_expert_ = true;
  extent_ = Extent{layer, expert, expert_file_->pos(), 0};
}

void PackedStoreWriter::end_expert() {
  MOE_CHECK(in_expert_ && current_ == nullptr, "PackedStoreWriter: end_expert outside an expert");
  extent_.bytes = expert_file_->pos() - extent_.offset;
  extents_.push_back(extent_);
  in_expert_ = false;
}

void PackedStoreWriter::copy_file(const fs::path& src) {
  const fs::path dst = partial_ / src.filename();
  std::error_code ec;
  fs::copy_file(src, dst, fs::copy_options::overwrite_existing, ec);
  if (ec) fail(src.string(), ": cannot copy to ", dst.string(), ": ", ec.message());
  fsync_path(dst, false);
}

void PackedStoreWriter::write_file(const std::string& name, const std::string& text) {
  MOE_CHECK(!name.empty() && name.find('/') == std::string::npos && name != "." && name != "..", "PackedStoreWriter: '",
            name, "' is not a plain file name");
  const fs::path dst = partial_ / name;
  {
    std::ofstream out(dst, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) fail(dst.string(), ": cannot write");
  }
  fsync_path(dst, false);
}

uint64_t PackedStoreWriter::data_bytes() const {
  return dense_->pos() + expert_file_->pos();
}

void PackedStoreWriter::commit(const PackedManifestInfo& info) {
  MOE_CHECK(!committed_, "PackedStoreWriter: committed twice");
  MOE_CHECK(current_ == nullptr && !in_expert_, "PackedStoreWriter: commit with an unfinished tensor or expert");
  dense_->sync_and_close();
  expert_file_->sync_and_close();

  nlohmann::ordered_json m = nlohmann::ordered_json::object();
  m["format"] = "moe-packed";
  m["version"] = PackedStore::kFormatVersion;
  m["recipe"] = info.recipe;
  m["quantizer"] = info.quantizer;
  m["source"] = info.source;
  nlohmann::ordered_json tensors = nlohmann::ordered_json::array();
  for (const Entry& e : tensors_) {
    nlohmann::ordered_json t = nlohmann::ordered_json::object();
    t["name"] = e.name;
    t["shape"] = e.shape;
    t["storage"] = e.storage;
    t["file"] = e.file;
    t["offset"] = e.offset;
    t["bytes"] = e.bytes;
    t["xxh3"] = hex64(e.xxh3);
    tensors.push_back(std::move(t));
  }
  m["tensors"] = std::move(tensors);
  nlohmann::ordered_json experts = nlohmann::ordered_json::array();
  for (const Extent& x : extents_) {
    nlohmann::ordered_json t = nlohmann::ordered_json::object();
    t["layer"] = x.layer;
    t["expert"] = x.expert;
    t["offset"] = x.offset;
    t["bytes"] = x.bytes;
    experts.push_back(std::move(t));
  }
  m["experts"] = std::move(experts);
  m["created_by"] = info.created_by;
  // One line per field, tensor and expert: readable and diffable, yet compact.
  std::string text = "{\n";
  bool first_field = true;
  for (auto it = m.begin(); it != m.end(); ++it) {
    text.append(first_field ? " " : ",\n ");
    first_field = false;
    text.append(nlohmann::ordered_json(it.key()).dump());
    text.append(": ");
    if (!it.value().is_array()) {
      text.append(it.value().dump());
      continue;
    }
    text.append("[");
    for (size_t i = 0; i < it.value().size(); ++i) {
      text.append(i == 0 ? "\n  " : ",\n  ");
      text.append(it.value()[i].dump());
    }
    text.append(it.value().empty() ? "]" : "\n ]");
  }
  text += "\n}\n";

  const fs::path manifest = partial_ / "manifest.json";
  const int fd = ::open(manifest.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail_errno(manifest, "cannot create");
  try {
    write_all(fd, manifest, text.data(), text.size());
    if (::fsync(fd) != 0) fail_errno(manifest, "fsync failed");
  } catch (...) {
    ::close(fd);
    throw;
  }
  if (::close(fd) != 0) fail_errno(manifest, "close failed");
  fsync_path(partial_, true);

  std::error_code ec;
  const bool exists = fs::exists(fs::symlink_status(out_, ec));
  if (exists && !replace_) fail(out_.string(), ": already exists; remove it first (moe convert --force replaces it)");
  if (exists) {
    // Swap atomically: `out` becomes the new store, the partial name holds the old one.
    if (::renameat2(AT_FDCWD, partial_.c_str(), AT_FDCWD, out_.c_str(), RENAME_EXCHANGE) == 0) {
      committed_ = true;  // the partial name now holds the old output: removed below
      fs::remove_all(partial_, ec);
    } else if (errno == EINVAL || errno == ENOSYS || errno == ENOTSUP) {
      const fs::path old = fs::path(str_cat(out_.string(), ".partial-", ::getpid(), ".old"));
      fs::remove_all(old, ec);
      if (::rename(out_.c_str(), old.c_str()) != 0) fail_errno(out_, "cannot move the existing output aside");
      if (::rename(partial_.c_str(), out_.c_str()) != 0) fail_errno(partial_, "cannot rename onto the output");
      committed_ = true;
      fs::remove_all(old, ec);
    } else {
      fail_errno(out_, "cannot replace the existing output");
    }
  } else {
    if (::renameat2(AT_FDCWD, partial_.c_str(), AT_FDCWD, out_.c_str(), RENAME_NOREPLACE) != 0) {
      if (errno == EEXIST) fail(out_.string(), ": appeared while converting; not replaced");
      if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        fail_errno(out_, "cannot rename the store into place");
      if (::rename(partial_.c_str(), out_.c_str()) != 0) fail_errno(out_, "cannot rename the store into place");
    }
    committed_ = true;
  }
  const fs::path parent = out_.has_parent_path() ? out_.parent_path() : fs::path(".");
  try {
    fsync_path(parent, true);
  } catch (const Error&) {
    // The store is in place; a parent directory that cannot be fsynced (some filesystems) is not fatal.
  }
}

}  // namespace moe

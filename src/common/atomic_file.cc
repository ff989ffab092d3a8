#include "common/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace iothub {
namespace {

Error IoError(std::string_view action, const std::string& path, int err) {
  return MakeError("IoError", std::string(action) + " " + path + ": " + std::strerror(err));
}

bool WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

Status WriteFileAtomically(const std::string& path, std::string_view bytes, unsigned mode) {
  const std::filesystem::path target(path);
  const std::filesystem::path dir =
      target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  std::string temp = (dir / ("." + target.filename().string() + ".XXXXXX")).string();
  const int fd = ::mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) return IoError("cannot write", path, errno);
  const auto fail = [&](int err) {
    ::unlink(temp.c_str());
    return IoError("cannot write", path, err);
  };
  // fchmod, not the umask: a key file must be 0600 and a certificate world-readable whatever
  // the caller's umask is. fsync before rename: otherwise a power cut can leave the new name
  // pointing at no data.
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0 || !WriteAll(fd, bytes) || ::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    return fail(err);
  }
  if (::close(fd) != 0) return fail(errno);
  if (::rename(temp.c_str(), path.c_str()) != 0) return fail(errno);
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool synced = dir_fd >= 0 && ::fsync(dir_fd) == 0;
  const int err = errno;
  if (dir_fd >= 0) ::close(dir_fd);
  if (!synced) return IoError("cannot sync the directory of", path, err);
  return Ok{};
}

}  // namespace iothub

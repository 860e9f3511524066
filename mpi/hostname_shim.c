/* gethostname() and uname() that report the SageMaker host name.
 *
 * In a container, gethostname() returns a container id, not "algo-N"; Open MPI's
 * MPI_Get_processor_name() and Python's socket.gethostname() use it, and ChainerMN groups
 * ranks into nodes by it. The rank step of smlaunch sets SMLAUNCH_HOSTNAME and preloads
 * this library. Without SMLAUNCH_HOSTNAME (or with an empty one) both calls behave exactly
 * as libc's: the shim is harmless outside a job, unlike the reference's, which reads a
 * hard-coded /opt/ml path and crashes when it is missing. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

static const char *
override_name(void)
{
  const char *name = getenv("SMLAUNCH_HOSTNAME");
  return (name != NULL && name[0] != '\0') ? name : NULL;
}

int
gethostname(char *name, size_t len)
{
  const char *host = override_name();
  if (host == NULL) {
    int (*real)(char *, size_t) = (int (*)(char *, size_t))dlsym(RTLD_NEXT, "gethostname");
    if (real == NULL) {
      errno = ENOSYS;
      return -1;
    }
    return real(name, len);
  }
  size_t n = strlen(host);
  if (n + 1 > len) {
    /* POSIX: truncate; glibc reports ENAMETOOLONG. Do both, as glibc does. */
    if (len > 0) {
      memcpy(name, host, len - 1);
      name[len - 1] = '\0';
    }
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(name, host, n + 1);
  return 0;
}

int
uname(struct utsname *buf)
{
  int (*real)(struct utsname *) = (int (*)(struct utsname *))dlsym(RTLD_NEXT, "uname");
  if (real == NULL) {
    errno = ENOSYS;
    return -1;
  }
  int rc = real(buf);
  const char *host = override_name();
  if (rc == 0 && host != NULL) {
    strncpy(buf->nodename, host, sizeof(buf->nodename) - 1);
    buf->nodename[sizeof(buf->nodename) - 1] = '\0';
  }
  return rc;
}

/* Preloaded before libfaketime by scripts/clock-sweep. libfaketime (0.9.10, Debian) rewrites every
 * clock_nanosleep as if its clock were the faked wall clock; with FAKETIME_DONT_FAKE_MONOTONIC=1 (the
 * monotonic clock stays real, so timeouts and thread waits keep working) Python's time.sleep, which sleeps
 * until an absolute CLOCK_MONOTONIC deadline, then fails with EINVAL. Here sleeps on any clock but the wall
 * clock go straight to the kernel; wall-clock sleeps are left to libfaketime. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req, struct timespec *rem) {
    static int (*next)(clockid_t, int, const struct timespec *, struct timespec *);
    if (clock != CLOCK_REALTIME && clock != CLOCK_REALTIME_COARSE) {
        long r = syscall(SYS_clock_nanosleep, clock, flags, req, rem);
        return r == -1 ? errno : 0;
    }
    if (!next) next = (int (*)(clockid_t, int, const struct timespec *, struct timespec *))dlsym(RTLD_NEXT, "clock_nanosleep");
    return next(clock, flags, req, rem);
}

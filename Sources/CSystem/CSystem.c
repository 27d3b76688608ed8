#define _GNU_SOURCE
#include "CSystem.h"
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

int csystem_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }
int csystem_set_parent_death_signal(int signal) { return prctl(PR_SET_PDEATHSIG, signal, 0, 0, 0); }
int csystem_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowfd);
}
int csystem_limit_malloc_arenas(int count) { return mallopt(M_ARENA_MAX, count); }
int csystem_malloc_trim(void) { return malloc_trim(0); }
int csystem_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
int csystem_accept_cloexec(int fd) { return accept4(fd, NULL, NULL, SOCK_CLOEXEC); }
int csystem_peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid) {
    struct ucred credentials;
    socklen_t length = sizeof(credentials);
    int result = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length);
    if (result == 0) { *pid = credentials.pid; *uid = credentials.uid; *gid = credentials.gid; }
    return result;
}
int csystem_sigwait(const sigset_t *set, int *signal, pid_t *sender) {
    siginfo_t info;
    int result = sigwaitinfo(set, &info);
    if (result >= 0) { *signal = info.si_signo; *sender = info.si_pid; }
    return result;
}
int csystem_sigtimedwait(const sigset_t *set, long milliseconds, int *signal, pid_t *sender) {
    siginfo_t info;
    struct timespec timeout = { milliseconds / 1000, (milliseconds % 1000) * 1000000L };
    int result = sigtimedwait(set, &info, &timeout);
    if (result >= 0) { *signal = info.si_signo; *sender = info.si_pid; }
    return result;
}
int csystem_wifexited(int status) { return WIFEXITED(status); }
int csystem_wexitstatus(int status) { return WEXITSTATUS(status); }
int csystem_wifsignaled(int status) { return WIFSIGNALED(status); }
int csystem_wtermsig(int status) { return WTERMSIG(status); }

// The few system calls Glibc's Swift import lacks (variadic, or hidden behind _GNU_SOURCE).
#ifndef KUBE_HAPROXY_CSYSTEM_H
#define KUBE_HAPROXY_CSYSTEM_H

#include <sys/types.h>
#include <spawn.h>
#include <signal.h>

/// prctl(PR_SET_CHILD_SUBREAPER, 1): orphans of our children are re-parented to us.
int csystem_set_child_subreaper(void);
/// prctl(PR_SET_PDEATHSIG, signal): the calling process gets `signal` when its parent dies.
int csystem_set_parent_death_signal(int signal);
/// posix_spawn_file_actions_addclosefrom_np: close every descriptor >= lowfd in the child.
int csystem_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd);
/// mallopt(M_ARENA_MAX, count).
int csystem_limit_malloc_arenas(int count);
/// malloc_trim(0): return freed heap memory to the system.
int csystem_malloc_trim(void);
/// pipe2 with O_CLOEXEC.
int csystem_pipe_cloexec(int fds[2]);
/// accept4 with SOCK_CLOEXEC.
int csystem_accept_cloexec(int fd);
/// The peer's credentials of a Unix socket (SO_PEERCRED).
int csystem_peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid);
/// sigwaitinfo with the signal number and sender's pid.
int csystem_sigwait(const sigset_t *set, int *signal, pid_t *sender);
/// sigtimedwait: the signal number, or -1 with errno EAGAIN when the timeout passed.
int csystem_sigtimedwait(const sigset_t *set, long milliseconds, int *signal, pid_t *sender);
/// The WIF*/WEXIT* macros, which Swift does not import.
int csystem_wifexited(int status);
int csystem_wexitstatus(int status);
int csystem_wifsignaled(int status);
int csystem_wtermsig(int status);

#endif

// Kernel ABI values that this machine's <linux/fanotify.h> may predate.
// Every value here is fixed by the kernel's uapi and never changes, so a
// fallback definition is safe: the kernel decides at run time whether it
// understands the bit, and the library reports EINVAL as "needs kernel X".
#pragma once

#include <linux/fanotify.h>
#include <stdint.h>

// The two libc wrappers, declared here instead of through <sys/fanotify.h>:
// glibc's <sys/fanotify.h> only adds these two lines to <linux/fanotify.h>,
// but musl's defines the uapi structs itself and cannot be included
// together with <linux/fanotify.h> (redefinition errors).
extern "C" {
int fanotify_init(unsigned int flags, unsigned int event_f_flags);
int fanotify_mark(int fanotify_fd, unsigned int flags, uint64_t mask, int dirfd, const char* pathname);
}

#ifndef FAN_PRE_ACCESS
#define FAN_PRE_ACCESS 0x00100000  // Linux 6.14
#endif
#ifndef FAN_MNT_ATTACH
#define FAN_MNT_ATTACH 0x01000000  // Linux 6.15
#endif
#ifndef FAN_MNT_DETACH
#define FAN_MNT_DETACH 0x02000000  // Linux 6.15
#endif
#ifndef FAN_FS_ERROR
#define FAN_FS_ERROR 0x00008000  // Linux 5.16
#endif
#ifndef FAN_RENAME
#define FAN_RENAME 0x10000000  // Linux 5.17
#endif
#ifndef FAN_REPORT_TARGET_FID
#define FAN_REPORT_TARGET_FID 0x00001000  // Linux 5.17
#endif
#ifndef FAN_REPORT_PIDFD
#define FAN_REPORT_PIDFD 0x00000080  // Linux 5.15
#endif
#ifndef FAN_REPORT_FD_ERROR
#define FAN_REPORT_FD_ERROR 0x00002000  // Linux 6.13
#endif
#ifndef FAN_REPORT_MNT
#define FAN_REPORT_MNT 0x00004000  // Linux 6.15
#endif
#ifndef FAN_MARK_EVICTABLE
#define FAN_MARK_EVICTABLE 0x00000200  // Linux 5.19
#endif
#ifndef FAN_MARK_IGNORE
#define FAN_MARK_IGNORE 0x00000400  // Linux 6.0
#endif
#ifndef FAN_MARK_MNTNS
#define FAN_MARK_MNTNS 0x00000110  // Linux 6.15
#endif
#ifndef FAN_EVENT_INFO_TYPE_PIDFD
#define FAN_EVENT_INFO_TYPE_PIDFD 4
#endif
#ifndef FAN_EVENT_INFO_TYPE_ERROR
#define FAN_EVENT_INFO_TYPE_ERROR 5
#endif
#ifndef FAN_EVENT_INFO_TYPE_RANGE
#define FAN_EVENT_INFO_TYPE_RANGE 6  // Linux 6.14, pre-content events
#endif
#ifndef FAN_EVENT_INFO_TYPE_MNT
#define FAN_EVENT_INFO_TYPE_MNT 7  // Linux 6.15, mount events
#endif
#ifndef FAN_EVENT_INFO_TYPE_OLD_DFID_NAME
#define FAN_EVENT_INFO_TYPE_OLD_DFID_NAME 10
#endif
#ifndef FAN_EVENT_INFO_TYPE_NEW_DFID_NAME
#define FAN_EVENT_INFO_TYPE_NEW_DFID_NAME 12
#endif
#ifndef FAN_INFO
#define FAN_INFO 0x20
#endif
#ifndef FAN_RESPONSE_INFO_AUDIT_RULE
#define FAN_RESPONSE_INFO_AUDIT_RULE 1  // Linux 6.3, with FAN_INFO
#endif
// struct fanotify_response_info_audit_rule (Linux 6.3), under a name of our
// own: older headers lack it, newer ones would clash.
struct FanAuditRuleRecord {
  uint8_t type;  // FAN_RESPONSE_INFO_AUDIT_RULE
  uint8_t pad;
  uint16_t len;  // sizeof(FanAuditRuleRecord)
  uint32_t ruleNumber;
  uint32_t subjectTrust;
  uint32_t objectTrust;
};
static_assert(sizeof(FanAuditRuleRecord) == 16, "the kernel's struct fanotify_response_info_audit_rule");
#ifndef FAN_NOPIDFD
#define FAN_NOPIDFD FAN_NOFD
#endif
#ifndef FAN_EPIDFD
#define FAN_EPIDFD -2
#endif

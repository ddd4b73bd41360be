#!/usr/bin/env python3
"""Writes real fanotify event buffers to native/fuzz/seeds/ (the fuzzer's
starting corpus): each file is the bytes one read(2) returned. Run as root:
    unshare --mount --propagation private python3 native/fuzz/make_seeds.py
It mounts a tmpfs on a fresh directory and marks only that tmpfs."""
import ctypes
import os
import struct
import subprocess
import tempfile

libc = ctypes.CDLL(None, use_errno=True)
libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]

FAN_CLASS_NOTIF, FAN_NONBLOCK = 0, 0x2
FAN_REPORT_PIDFD, FAN_REPORT_TID = 0x80, 0x100
FAN_REPORT_FID, FAN_REPORT_DIR_FID, FAN_REPORT_NAME, FAN_REPORT_TARGET_FID = 0x200, 0x400, 0x800, 0x1000
FAN_REPORT_DFID_NAME = FAN_REPORT_DIR_FID | FAN_REPORT_NAME
FAN_MARK_ADD, FAN_MARK_FILESYSTEM = 0x1, 0x100
FAN_ACCESS, FAN_MODIFY, FAN_ATTRIB, FAN_CLOSE_WRITE, FAN_CLOSE_NOWRITE, FAN_OPEN = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20
FAN_MOVED_FROM, FAN_MOVED_TO, FAN_CREATE, FAN_DELETE, FAN_DELETE_SELF, FAN_RENAME = 0x40, 0x80, 0x100, 0x200, 0x400, 0x10000000
FAN_ONDIR = 0x40000000
O_RDONLY = os.O_RDONLY


def group(flags):
    fd = libc.fanotify_init(flags | FAN_NONBLOCK, O_RDONLY)
    if fd < 0:
        raise OSError(ctypes.get_errno(), 'fanotify_init')
    return fd


def mark(fd, mask, path, flags=FAN_MARK_ADD | FAN_MARK_FILESYSTEM):
    if libc.fanotify_mark(fd, flags, mask, -100, path.encode()) < 0:
        raise OSError(ctypes.get_errno(), 'fanotify_mark ' + path)


def activity(root, tag):
    d = os.path.join(root, tag)
    os.mkdir(d)
    f = os.path.join(d, 'file-with-a-longer-name.txt')
    with open(f, 'w') as fh:
        fh.write('hello')
    with open(f) as fh:
        fh.read()
    os.chmod(f, 0o600)
    os.rename(f, os.path.join(d, 'renamed'))
    os.mkdir(os.path.join(d, 'sub'))
    os.rename(os.path.join(d, 'sub'), os.path.join(d, 'sub2'))
    os.unlink(os.path.join(d, 'renamed'))
    os.rmdir(os.path.join(d, 'sub2'))


def close_fds(chunk):
    """Closes the event fds and pidfds a buffer carries (the seeds keep their numbers)."""
    off = 0
    while off + 24 <= len(chunk):
        event_len, _, _, metadata_len = struct.unpack_from('<IBBH', chunk, off)
        fd = struct.unpack_from('<i', chunk, off + 16)[0]
        if fd >= 0:
            os.close(fd)
        rec = off + metadata_len
        while rec + 4 <= off + event_len:
            rtype, _, rlen = struct.unpack_from('<BBH', chunk, rec)
            if rtype == 4:  # FAN_EVENT_INFO_TYPE_PIDFD
                pidfd = struct.unpack_from('<i', chunk, rec + 4)[0]
                if pidfd >= 0:
                    os.close(pidfd)
            rec += max(rlen, 4)
        off += event_len


def drain(fd):
    chunks = []
    while True:
        try:
            b = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not b:
            break
        close_fds(b)
        chunks.append(b)
    return chunks


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'seeds')
    os.makedirs(out, exist_ok=True)
    root = tempfile.mkdtemp(prefix='fanotify-seeds-')
    subprocess.run(['mount', '-t', 'tmpfs', 'tmpfs', root], check=True)
    try:
        dirent = FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO | FAN_ATTRIB | FAN_MODIFY | FAN_CLOSE_WRITE | FAN_ONDIR
        configs = [
            ('fd-events', FAN_CLASS_NOTIF, FAN_OPEN | FAN_ACCESS | FAN_MODIFY | FAN_CLOSE_WRITE | FAN_CLOSE_NOWRITE),
            ('fid', FAN_CLASS_NOTIF | FAN_REPORT_FID, dirent | FAN_DELETE_SELF),
            ('dfid-name', FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME, dirent),
            ('dfid-name-fid', FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_REPORT_FID, dirent),
            ('rename-target', FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_REPORT_FID | FAN_REPORT_TARGET_FID, dirent | FAN_RENAME),
            ('pidfd-fid', FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_REPORT_FID | FAN_REPORT_PIDFD, dirent),
        ]
        for name, flags, mask in configs:
            fd = group(flags)
            mark(fd, mask, root)
            activity(root, name)
            for i, chunk in enumerate(drain(fd)):
                with open(os.path.join(out, f'{name}-{i}.bin'), 'wb') as fh:
                    fh.write(chunk)
            os.close(fd)
    finally:
        subprocess.run(['umount', root], check=False)
        os.rmdir(root)
    print('\n'.join(sorted(f'{f}: {os.path.getsize(os.path.join(out, f))} bytes' for f in os.listdir(out))))


if __name__ == '__main__':
    main()

"""A container root filesystem made from programs installed on this machine.

No registry is reachable, so an image of a real program is this machine's own
Debian package of it: the package's files, every shared library its ELF files
load (as `ldd` resolves them), a static busybox for the shell and the small
tools an official image's entrypoint and health check call (the prom/* images
are busybox-based too), and the users and directories its contract names.
The result is a tar archive that `docker import` turns into an image; owners
and modes are those of the archive, as in the official image's layers.
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from ..standin import applets, busybox_path

# package files no program reads at run time
SKIPPED_PREFIXES = ("/usr/share/doc/", "/usr/share/man/", "/usr/share/lintian/",
                    "/usr/share/bug/", "/lib/systemd/", "/usr/lib/systemd/", "/etc/init.d/",
                    "/etc/logrotate.d/", "/etc/default/")
# Debian's merged /usr: these are links in the host's root and in the image's
MERGED = {"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: str = "/"
    group: Optional[str] = None  # the primary group's name; the user's name by default


@dataclass(frozen=True)
class Directory:
    path: str
    uid: int = 0
    gid: int = 0
    mode: int = 0o755


@dataclass(frozen=True)
class TextFile:
    path: str
    content: str
    mode: int = 0o644


@dataclass
class RootFs:
    """Everything that goes into one image, before it is written as a tar."""

    packages: tuple[str, ...] = ()
    host_paths: tuple[str, ...] = ()  # files or directories copied as they are
    users: tuple[User, ...] = ()
    directories: tuple[Directory, ...] = ()
    files: tuple[TextFile, ...] = ()
    links: tuple[tuple[str, str], ...] = ()  # (path, target): symbolic links to add
    # (host directory, where in the image): a tree copied under another name
    copies: tuple[tuple[str, str], ...] = ()
    # host path -> replacement content of a copied file (e.g. a patched sample config)
    patched: dict[str, str] = field(default_factory=dict)


def package_files(package: str) -> list[str]:
    listed = subprocess.run(["dpkg-query", "-L", package], capture_output=True, text=True,
                            check=True, timeout=30).stdout.splitlines()
    return [path for path in listed
            if path not in ("/.", "") and not path.startswith(SKIPPED_PREFIXES)]


def _host_path(path: str) -> str:
    """`path` with its directories resolved (so /lib/x.so becomes /usr/lib/x.so), the
    last component kept as it is (it may be a link the image must hold too)."""
    parent, name = os.path.split(path)
    return os.path.join(os.path.realpath(parent), name)


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"\x7fELF"
    except OSError:
        return False


def shared_libraries(paths: Iterable[str]) -> set[str]:
    """The libraries (and the loader) that the dynamic ELF files among `paths` load."""
    libraries: set[str] = set()
    for path in paths:
        if not (os.path.isfile(path) and _is_elf(path)):
            continue
        result = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=30)
        if result.returncode != 0:  # static, or not an executable/library
            continue
        for line in result.stdout.splitlines():
            parts = line.split()
            if "=>" in parts and len(parts) > parts.index("=>") + 1:
                target = parts[parts.index("=>") + 1]
                if target.startswith("/"):
                    libraries.add(target)
            elif parts and parts[0].startswith("/"):
                libraries.add(parts[0])  # the loader
    return libraries


class _Archive:
    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buffer, mode="w")
        self.entries: dict[str, tarfile.TarInfo] = {}
        # where a regular file's bytes come from: a host path, or the bytes themselves
        self.sources: dict[str, str | bytes] = {}
        self._walked: set[str] = set()  # host directories already copied whole

    def _directory(self, path: str, uid: int = 0, gid: int = 0, mode: int = 0o755) -> None:
        path = path.strip("/")
        if not path:
            return
        parent = os.path.dirname(path)
        if parent and parent not in self.entries:
            self._directory(parent)
        if path in self.entries:
            return
        info = tarfile.TarInfo(path)
        info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, mode, uid, gid
        self.entries[path] = info

    def directory(self, path: str, uid: int, gid: int, mode: int) -> None:
        """A directory with the given owner and mode, whatever was there before."""
        self.entries.pop(path.strip("/"), None)
        self._directory(path, uid, gid, mode)

    def link(self, path: str, target: str) -> None:
        path = path.strip("/")
        self._directory(os.path.dirname(path))
        info = tarfile.TarInfo(path)
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
        self.entries[path] = info
        self.sources.pop(path, None)

    def text(self, path: str, content: bytes, mode: int, uid: int = 0, gid: int = 0) -> None:
        path = path.strip("/")
        self._directory(os.path.dirname(path))
        info = tarfile.TarInfo(path)
        info.size, info.mode, info.uid, info.gid = len(content), mode, uid, gid
        self.entries[path] = info
        self.sources[path] = content

    def file(self, path: str, host: str) -> None:
        """The host's regular file `host` at `path`, with its mode."""
        path = path.strip("/")
        self._directory(os.path.dirname(path))
        info = tarfile.TarInfo(path)
        status = os.stat(host)
        info.size, info.mode = status.st_size, stat.S_IMODE(status.st_mode)
        self.entries[path] = info
        self.sources[path] = host

    def copy(self, host: str, patched: dict[str, str]) -> None:
        """The host's file, link or directory tree at `host`, and what its links point at."""
        host = _host_path(host)
        name = host.strip("/")
        if not os.path.lexists(host):
            return
        mode = os.lstat(host)
        if name in self.entries and not stat.S_ISDIR(mode.st_mode):
            return
        if stat.S_ISLNK(mode.st_mode):
            target = os.readlink(host)
            self.link(host, target)
            self.copy(os.path.join(os.path.dirname(host), target), patched)
        elif stat.S_ISDIR(mode.st_mode):
            if name in self._walked:
                return
            self._walked.add(name)
            self._directory(host, mode=stat.S_IMODE(mode.st_mode))
            for child in sorted(os.listdir(host)):
                self.copy(os.path.join(host, child), patched)
        elif stat.S_ISREG(mode.st_mode):
            if host in patched:
                self.text(host, patched[host].encode(), stat.S_IMODE(mode.st_mode))
                return
            self.file(host, host)

    def copy_as(self, host: str, image_path: str, patched: dict[str, str]) -> None:
        """The host's tree at `host` under the name `image_path` (links kept as they are)."""
        for root, directories, names in os.walk(host):
            relative = os.path.relpath(root, host)
            target = os.path.normpath(os.path.join(image_path, relative))
            self._directory(target, mode=stat.S_IMODE(os.stat(root).st_mode))
            for name in sorted(directories + names):
                source, destination = os.path.join(root, name), os.path.join(target, name)
                if os.path.islink(source):
                    self.link(destination, os.readlink(source))
                elif os.path.isfile(source):
                    content = patched.get(source)
                    if content is not None:
                        self.text(destination, content.encode(), stat.S_IMODE(os.stat(source).st_mode))
                    else:  # read when written; its libraries are found like a package's
                        self.file(destination, source)

    def write(self) -> bytes:
        for name in sorted(self.entries):  # parents before children
            info, source = self.entries[name], self.sources.get(name)
            if isinstance(source, str):
                with open(source, "rb") as handle:
                    self.tar.addfile(info, handle)
            elif source is not None:
                self.tar.addfile(info, io.BytesIO(source))
            else:
                self.tar.addfile(info)
        self.tar.close()
        return self.buffer.getvalue()


def _passwd(users: tuple[User, ...]) -> tuple[str, str]:
    everyone = (User("root", 0, 0, "/root"),) + users + (User("nobody", 65534, 65534, "/nonexistent",
                                                              group="nogroup"),)
    seen_users: dict[str, User] = {}
    for user in everyone:
        seen_users.setdefault(user.name, user)
    groups: dict[int, str] = {}
    for user in seen_users.values():
        groups.setdefault(user.gid, user.group or user.name)
    passwd = "".join(f"{u.name}:x:{u.uid}:{u.gid}:{u.name}:{u.home}:/bin/sh\n" for u in seen_users.values())
    group = "".join(f"{name}:x:{gid}:\n" for gid, name in sorted(groups.items()))
    return passwd, group


def build(spec: RootFs) -> bytes:
    """The image's root filesystem as an uncompressed tar archive."""
    archive = _Archive()
    for name, target in MERGED.items():
        archive.link(name, target)
    wanted: list[str] = []
    for package in spec.packages:
        for path in package_files(package):
            if os.path.isdir(path) and not os.path.islink(path):
                archive._directory(_host_path(path))  # its own files are listed one by one
            else:
                wanted.append(path)
    for path in wanted + list(spec.host_paths):
        archive.copy(path, spec.patched)
    for host, image_path in spec.copies:
        archive.copy_as(host, image_path, spec.patched)
    copied = [source for source in archive.sources.values() if isinstance(source, str)]
    # ldd lists what the libraries load in turn: one pass is the whole closure
    for library in sorted(shared_libraries(copied)):
        archive.copy(library, spec.patched)
    busybox = busybox_path()
    archive.text("usr/bin/busybox", busybox.read_bytes(), 0o755)
    for applet in applets(busybox):
        for directory in ("usr/bin", "usr/sbin"):
            if f"{directory}/{applet}" in archive.entries:
                break
        else:
            archive.link(f"usr/bin/{applet}", "busybox")
    passwd, group = _passwd(spec.users)
    archive.text("etc/passwd", passwd.encode(), 0o644)
    archive.text("etc/group", group.encode(), 0o644)
    archive.directory("tmp", 0, 0, 0o1777)
    for directory in spec.directories:
        archive.directory(directory.path, directory.uid, directory.gid, directory.mode)
    for path, target in spec.links:
        archive.link(path, target)
    for text in spec.files:
        archive.text(text.path, text.content.encode(), text.mode)
    return archive.write()


def write_to(path: Path, spec: RootFs) -> Path:
    path.write_bytes(build(spec))
    return path

#!/usr/bin/env python3
"""Find and neutralise an ELF file's needs for a newer glibc than the running one (stdlib only).

    elf_versions.py needs FILE...             print "FILE SYMBOL GLIBC_x.y" per symbol newer than this glibc
    elf_versions.py patch SHIM.so FILE...     point those symbols at SHIM.so (which must define them all)

Why not only `patchelf --clear-symbol-version`: it drops the version from the symbols but leaves the
GLIBC_2.38 entry in .gnu.version_r, and ld.so checks every such entry, so the binary still fails with
"version `GLIBC_2.38' not found". Marking the entry weak is not enough either: ld.so then prints
"weak version ... not found" on every start, polluting output that tools parse. So `patch` unlinks the
entry from its chain once no symbol uses it. The SHIM must already be in the file's DT_NEEDED
(patchelf --add-needed).
Exit 1, naming the symbols, when the shim lacks one: a newer Apptainer needing more must fail loudly.
"""

from __future__ import annotations

import os
import struct
import sys

SHT_DYNSYM, SHT_VERNEED, SHT_VERSYM = 11, 0x6FFFFFFE, 0x6FFFFFFF
VER_NDX_GLOBAL = 1


def host_glibc() -> tuple[int, ...]:
    return _version(os.confstr("CS_GNU_LIBC_VERSION").split()[1])


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


class Elf:
    """The dynamic symbols and version needs of a 64-bit little-endian ELF file, patchable in place."""

    def __init__(self, path: str):
        self.path = path
        with open(path, "rb") as handle:
            self.data = bytearray(handle.read())
        if self.data[:4] != b"\x7fELF" or self.data[4] != 2 or self.data[5] != 1:
            raise SystemExit(f"{path}: not a 64-bit little-endian ELF file")
        shoff, = struct.unpack_from("<Q", self.data, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", self.data, 0x3A)
        self.sections = [struct.unpack_from("<IIQQQQIIQQ", self.data, shoff + i * shentsize) for i in range(shnum)]

    def _section(self, kind: int):
        return next((s for s in self.sections if s[1] == kind), None)

    def _string(self, table, offset: int) -> str:
        start = table[4] + offset
        return self.data[start : self.data.index(b"\0", start)].decode()

    def version_needs(self) -> dict[int, tuple[str, int, int]]:
        """version index -> (name, file offset of its Verneed entry, file offset of its Vernaux entry)."""
        verneed, needs = self._section(SHT_VERNEED), {}
        if verneed is None:
            return needs
        strings, offset = self.sections[verneed[6]], verneed[4]
        for _ in range(verneed[7]):  # sh_info = number of Verneed entries
            _, count, _, aux, following = struct.unpack_from("<HHIII", self.data, offset)
            entry = offset + aux
            for _ in range(count):
                _, _, index, name, step = struct.unpack_from("<IHHII", self.data, entry)
                needs[index] = (self._string(strings, name), offset, entry)
                entry += step
            offset += following
        return needs

    def drop_need(self, need: int, entry: int) -> None:
        """Unlink one Vernaux entry from its Verneed's chain (ld.so and readelf follow the links)."""
        version, count, file, aux, following = struct.unpack_from("<HHIII", self.data, need)
        if count < 2:
            raise SystemExit(f"{self.path}: cannot drop the only version needed from a library")
        step = struct.unpack_from("<I", self.data, entry + 12)[0]
        last = step == 0
        if need + aux == entry:  # first in the chain: the Verneed points past it
            aux += step
        else:
            previous = need + aux
            while previous + struct.unpack_from("<I", self.data, previous + 12)[0] != entry:
                previous += struct.unpack_from("<I", self.data, previous + 12)[0]
            struct.pack_into("<I", self.data, previous + 12, 0 if last else entry + step - previous)
        struct.pack_into("<HHIII", self.data, need, version, count - 1, file, aux, following)

    def newer_symbols(self, host: tuple[int, ...]) -> list[tuple[str, str, int]]:
        """(symbol, version, versym offset) of undefined symbols bound to a glibc newer than host."""
        dynsym, versym = self._section(SHT_DYNSYM), self._section(SHT_VERSYM)
        if dynsym is None or versym is None:
            return []
        needs, strings, found = self.version_needs(), self.sections[dynsym[6]], []
        for i in range(dynsym[5] // 24):
            name_offset, _, _, shndx = struct.unpack_from("<IBBH", self.data, dynsym[4] + i * 24)
            slot = versym[4] + 2 * i
            index = struct.unpack_from("<H", self.data, slot)[0] & 0x7FFF
            version = needs.get(index, ("", 0, 0))[0]
            if shndx == 0 and version.startswith("GLIBC_2.") and _version(version[6:]) > host:
                found.append((self._string(strings, name_offset), version, slot))
        return found

    def unused_newer_needs(self, host: tuple[int, ...]) -> list[tuple[int, int]]:
        """(Verneed, Vernaux) offsets of newer-glibc versions that no symbol refers to any more."""
        versym, used = self._section(SHT_VERSYM), set()
        for i in range(versym[5] // 2):
            used.add(struct.unpack_from("<H", self.data, versym[4] + 2 * i)[0] & 0x7FFF)
        return [
            (need, entry)
            for index, (name, need, entry) in self.version_needs().items()
            if name.startswith("GLIBC_2.") and _version(name[6:]) > host and index not in used
        ]

    def defined_symbols(self) -> set[str]:
        dynsym = self._section(SHT_DYNSYM)
        strings, names = self.sections[dynsym[6]], set()
        for i in range(dynsym[5] // 24):
            name_offset, _, _, shndx = struct.unpack_from("<IBBH", self.data, dynsym[4] + i * 24)
            if shndx != 0 and name_offset:
                names.add(self._string(strings, name_offset))
        return names

    def save(self) -> None:
        partial = self.path + ".patching"
        with open(partial, "wb") as handle:
            handle.write(self.data)
        os.chmod(partial, os.stat(self.path).st_mode)
        os.replace(partial, self.path)


def main(argv: list[str]) -> int:
    host = host_glibc()
    if len(argv) >= 2 and argv[0] == "needs":
        for path in argv[1:]:
            for symbol, version, _ in Elf(path).newer_symbols(host):
                print(path, symbol, version)
        return 0
    if len(argv) >= 3 and argv[0] == "patch":
        provided = Elf(argv[1]).defined_symbols()
        for path in argv[2:]:
            elf = Elf(path)
            symbols = elf.newer_symbols(host)
            missing = sorted({s for s, _, _ in symbols} - provided)
            if missing:
                print(f"{path}: needs glibc symbols the shim lacks: {' '.join(missing)}", file=sys.stderr)
                return 1
            for _, _, slot in symbols:
                struct.pack_into("<H", elf.data, slot, VER_NDX_GLOBAL)
            unused = elf.unused_newer_needs(host)
            for need, entry in unused:
                elf.drop_need(need, entry)
            if symbols or unused:
                elf.save()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

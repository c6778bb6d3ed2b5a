"""A small eBPF assembler: instructions as Python calls, labels for jumps.

    p = Program()
    p.mov(R6, R1)                      # r6 = ctx
    p.ldx(W, R1, R6, 32)               # r1 = *(u32 *)(r6 + 32)
    p.jump(JNE, R1, 1, "out")          # if r1 != 1 goto out
    p.ld_map_fd(R1, services.fd)       # r1 = &map (a two-slot instruction)
    p.call(Helper.MAP_LOOKUP_ELEM)
    p.label("out")
    p.mov(R0, 1)
    p.exit()
    p.assemble()  → bytes for BPF_PROG_LOAD

Each instruction is the kernel's `struct bpf_insn` (u8 opcode, u8 dst:4 src:4,
s16 off, s32 imm; Documentation/bpf/standardization/instruction-set.rst). Only
what corral's programs use is here: 64- and 32-bit ALU, loads and stores, the
atomic fetch-add, conditional jumps, helper calls and map references. The
verifier is the judge of a program; this module only refuses what it cannot
encode (an unknown label, an immediate or offset out of range).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)
FP = R10  # the read-only frame pointer; the stack is fp-512 .. fp-1

# Operand sizes of loads and stores.
W, H, B, DW = 0x00, 0x08, 0x10, 0x18

# Instruction classes, modes and sources.
_LD, _LDX, _ST, _STX, _ALU, _JMP, _JMP32, _ALU64 = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
_IMM, _MEM, _ATOMIC = 0x00, 0x60, 0xC0
_K, _X = 0x00, 0x08
_PSEUDO_MAP_FD = 1  # src of a ld_imm64: imm is a map's file descriptor
_FETCH = 0x01  # atomic op flag: the old value comes back in src

# ALU operations.
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, MOD, XOR, MOV = (
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xA0, 0xB0)

# Jump conditions (unsigned unless JS*).
JA, JEQ, JGT, JGE, JSET, JNE, JSGT, JSGE = 0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70
JLT, JLE = 0xA0, 0xB0
_CALL, _EXIT = 0x80, 0x90


class Helper(enum.IntEnum):
    """Kernel helper functions by number (include/uapi/linux/bpf.h, ___BPF_FUNC_MAPPER)."""

    MAP_LOOKUP_ELEM = 1
    MAP_UPDATE_ELEM = 2
    MAP_DELETE_ELEM = 3
    GET_PRANDOM_U32 = 7
    GET_SOCKET_COOKIE = 46
    GET_NETNS_COOKIE = 122


class AsmError(ValueError):
    """A program this assembler cannot encode (a programming error, never retried)."""


@dataclass
class _Insn:
    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0
    target: str | None = None  # a jump's label, resolved by assemble()


def _reg(r: int) -> int:
    if not 0 <= r <= 10:
        raise AsmError(f"no register r{r}")
    return r


def _imm32(value: int) -> int:
    if not -(2**31) <= value < 2**32:
        raise AsmError(f"immediate {value} does not fit 32 bits")
    return value - 2**32 if value >= 2**31 else value


def _off16(value: int) -> int:
    if not -(2**15) <= value < 2**15:
        raise AsmError(f"offset {value} does not fit 16 bits")
    return value


class Program:
    """An instruction list being written; `assemble()` resolves labels to offsets."""

    def __init__(self) -> None:
        self._insns: list[_Insn] = []
        self._labels: dict[str, int] = {}  # label → index in _insns

    def __len__(self) -> int:
        """Instruction slots (a ld_imm64 takes two)."""
        return len(self._insns)

    def _emit(self, insn: _Insn) -> Program:
        self._insns.append(insn)
        return self

    def alu(self, op: int, dst: int, operand: int, *, reg: bool = False,
            bits: int = 64) -> Program:
        """dst op= operand (a register when ``reg``, else an immediate); 32-bit ALU
        zero-extends the result into the upper half."""
        cls = _ALU64 if bits == 64 else _ALU
        if reg:
            return self._emit(_Insn(cls | op | _X, _reg(dst), _reg(operand)))
        return self._emit(_Insn(cls | op | _K, _reg(dst), imm=_imm32(operand)))

    def mov(self, dst: int, src_reg: int) -> Program:
        """dst = src (64-bit register move)."""
        return self.alu(MOV, dst, src_reg, reg=True)

    def mov_imm(self, dst: int, value: int) -> Program:
        return self.alu(MOV, dst, value)

    def add_imm(self, dst: int, value: int) -> Program:
        return self.alu(ADD, dst, value)

    def ldx(self, size: int, dst: int, src: int, off: int) -> Program:
        """dst = *(size *)(src + off)."""
        return self._emit(_Insn(_LDX | _MEM | size, _reg(dst), _reg(src), _off16(off)))

    def stx(self, size: int, dst: int, off: int, src: int) -> Program:
        """*(size *)(dst + off) = src."""
        return self._emit(_Insn(_STX | _MEM | size, _reg(dst), _reg(src), _off16(off)))

    def st(self, size: int, dst: int, off: int, value: int) -> Program:
        """*(size *)(dst + off) = value."""
        return self._emit(_Insn(_ST | _MEM | size, _reg(dst), 0, _off16(off), _imm32(value)))

    def fetch_add(self, size: int, dst: int, off: int, src: int) -> Program:
        """src = atomic_fetch_add((size *)(dst + off), src): the old value in src."""
        if size not in (W, DW):
            raise AsmError("atomic operations are 32 or 64 bits")
        return self._emit(_Insn(_STX | _ATOMIC | size, _reg(dst), _reg(src), _off16(off),
                                ADD | _FETCH))

    def ld_map_fd(self, dst: int, fd: int) -> Program:
        """dst = the map behind file descriptor ``fd`` (the kernel swaps in its address)."""
        self._emit(_Insn(_LD | _IMM | DW, _reg(dst), _PSEUDO_MAP_FD, imm=_imm32(fd)))
        return self._emit(_Insn(0))  # the second half of a 64-bit immediate

    def jump(self, op: int, dst: int, operand: int, label: str, *, reg: bool = False,
             bits: int = 64) -> Program:
        """if dst op operand goto label (operand a register when ``reg``). A 64-bit
        compare sign-extends an immediate (0xffff0000 is -65536): compare 32-bit
        values with ``bits=32``."""
        cls = _JMP if bits == 64 else _JMP32
        if reg:
            return self._emit(_Insn(cls | op | _X, _reg(dst), _reg(operand), target=label))
        return self._emit(_Insn(cls | op | _K, _reg(dst), imm=_imm32(operand), target=label))

    def goto(self, label: str) -> Program:
        return self._emit(_Insn(_JMP | JA, target=label))

    def call(self, helper: Helper) -> Program:
        """r0 = helper(r1, ..., r5); r1-r5 are clobbered, r6-r9 kept."""
        return self._emit(_Insn(_JMP | _CALL, imm=int(helper)))

    def exit(self) -> Program:
        """Return r0."""
        return self._emit(_Insn(_JMP | _EXIT))

    def label(self, name: str) -> Program:
        if name in self._labels:
            raise AsmError(f"label {name!r} defined twice")
        self._labels[name] = len(self._insns)
        return self

    def assemble(self) -> bytes:
        out = bytearray()
        for index, insn in enumerate(self._insns):
            off = insn.off
            if insn.target is not None:
                if insn.target not in self._labels:
                    raise AsmError(f"jump to undefined label {insn.target!r}")
                off = _off16(self._labels[insn.target] - index - 1)
            out += struct.pack("<BBhi", insn.code, insn.src << 4 | insn.dst, off, insn.imm)
        return bytes(out)

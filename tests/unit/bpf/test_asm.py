"""The assembler's encoding: the expected bytes are what `llvm-mc -triple bpfel
-mcpu=v3 -show-encoding` gives for the same instructions (written down here, so
the test needs no LLVM)."""

from __future__ import annotations

import struct

import pytest

from corral.bpf.asm import DW, FP, JEQ, JNE, MOD, R0, R1, R2, R6, AsmError, Helper, Program, W


def insns(code: bytes) -> list[tuple[int, int, int, int]]:
    """(opcode, regs byte, off, imm) of each 8-byte slot."""
    return [struct.unpack_from("<BBhi", code, i) for i in range(0, len(code), 8)]


def test_encodings_are_the_kernels() -> None:
    p = Program()
    p.mov(R6, R1)                      # bf 16: r6 = r1
    p.mov_imm(R0, 1)                   # b7 00 ... 01: r0 = 1
    p.ldx(W, R1, R6, 32)               # 61 61 20 00: r1 = *(u32 *)(r6 + 32)
    p.stx(DW, FP, -16, R0)             # 7b 0a f0 ff: *(u64 *)(r10 - 16) = r0
    p.st(W, FP, -4, 7)                 # 62 0a fc ff 07
    p.alu(MOD, R1, R2, reg=True, bits=32)  # 9c 21: w1 %= w2
    p.fetch_add(W, R6, 8, R1)          # c3 16 08 00 01: r1 = atomic_fetch_add(r6 + 8)
    p.call(Helper.MAP_LOOKUP_ELEM)     # 85 00 ... 01
    p.exit()                           # 95
    assert insns(p.assemble()) == [
        (0xBF, 0x16, 0, 0), (0xB7, 0x00, 0, 1), (0x61, 0x61, 32, 0), (0x7B, 0x0A, -16, 0),
        (0x62, 0x0A, -4, 7), (0x9C, 0x21, 0, 0), (0xC3, 0x16, 8, 1), (0x85, 0, 0, 1),
        (0x95, 0, 0, 0)]


def test_jumps_count_slots_and_a_map_reference_takes_two() -> None:
    p = Program()
    p.jump(JEQ, R1, 0, "end")          # skips the two-slot ld_imm64 and the exit
    p.ld_map_fd(R1, 5)
    p.goto("end")
    p.jump(JNE, R1, 0xFFFF0000, "end", bits=32)  # 56 01 ... 00 00 ff ff: if w1 != ...
    p.label("end").exit()
    code = insns(p.assemble())
    assert code[0] == (0x15, 0x01, 4, 0)
    assert code[1] == (0x18, 0x11, 0, 5) and code[2] == (0, 0, 0, 0)  # src 1: a map fd
    assert code[3] == (0x05, 0, 1, 0)
    assert code[4] == (0x56, 0x01, 0, -65536)


def test_what_cannot_be_encoded_is_refused() -> None:
    with pytest.raises(AsmError, match="undefined label"):
        Program().goto("nowhere").assemble()
    with pytest.raises(AsmError, match="defined twice"):
        Program().label("a").label("a")
    with pytest.raises(AsmError, match="does not fit 32 bits"):
        Program().mov_imm(R0, 2**33)
    with pytest.raises(AsmError, match="does not fit 16 bits"):
        Program().ldx(W, R0, R1, 2**15)
    with pytest.raises(AsmError, match="no register"):
        Program().mov(R0, 11)
    assert insns(Program().mov_imm(R0, 2**32 - 1).assemble())[0][3] == -1  # u32 as s32

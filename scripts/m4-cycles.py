#!/usr/bin/env python3
"""Cortex-M4 cycle estimate from an executed-instruction mix (scripts/embedded/insnmix.c).

QEMU counts instructions, not cycles, and on a Cortex-M4 they are not worth the same: SMLAD
does two 8-bit multiply-adds in 1 cycle, VMLA.F32 one float multiply-add in 3, VDIV.F32 takes
14. This weighs each mnemonic with the cycle counts of the Cortex-M4 Technical Reference
Manual (r0p1: table 3-1 for the integer core, table 7-1 for the FPU) and prints a range,
because two things depend on what QEMU does not model:

- loads and stores: 2 cycles, or 1 when the next instruction is also a load or store (the
  TRM's pipelining; `low` takes 1 for every single load/store, `high` 2);
- branches: 1 + P when taken (P = 1..3, the pipeline refill), 1 when a conditional one is not
  (`low`: conditional branches not taken, P = 1 otherwise; `high`: every branch taken, P = 3).

Flash wait states, bus contention and the FPU's lazy stacking are not modelled: a real board
adds to both sides. The estimate is for comparing builds of the same program (int8 against
float32), where those effects largely cancel; it is not a latency.

    python3 scripts/m4-cycles.py int8=MIX_A.txt f32=MIX_B.txt [--json]
"""

import json
import re
import sys

# (low, high) cycles per mnemonic class.
SINGLE_MEMORY = (1, 2)
COND_BRANCH = (1, 4)
BRANCH = (2, 4)
COSTS = [
    (r"(ldr|str)(b|h|sb|sh|t|bt|ht|ex)?$", SINGLE_MEMORY),
    (r"(ldr|str)d$", (3, 3)),
    (r"vldr$|vstr$", SINGLE_MEMORY),
    (r"b(eq|ne|cs|cc|hs|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le)$|cbn?z$", COND_BRANCH),
    (r"b$|bl$|blx$|bx$", BRANCH),
    (r"tb[bh]$", (3, 5)),
    (r"it[te]{0,3}$", (0, 1)),
    (r"[su]div$", (2, 12)),
    (r"ml[as]$", (2, 2)),
    (r"vml[as]\.f32$|vnml[as]\.f32$|vf[n]?m[as]\.f32$", (3, 3)),
    (r"vdiv\.f32$|vsqrt\.f32$", (14, 14)),
    (r"vmov$", (1, 2)),
]
MULTI = re.compile(r"(push|pop|ldm\w*|stm\w*|vpush|vpop|vldm\w*|vstm\w*)/(\d+)$")


def cost(mnemonic):
    """(low, high) cycles of one execution."""
    m = MULTI.match(mnemonic)
    if m:
        return (1 + int(m[2]),) * 2
    for pattern, c in COSTS:
        if re.match(pattern, mnemonic):
            return c
    return (1, 1)  # data processing, multiplies (MUL, SMLAD, UMULL...), FPU add/mul/cvt/cmp/mov


def group(mnemonic):
    """Where the cycles go, in a few words."""
    if mnemonic in ("smlad", "vmla.f32", "vfma.f32"):
        return "multiply-accumulate"
    if re.match(r"v(div|sqrt)", mnemonic):
        return "float divide"
    if MULTI.match(mnemonic) or re.match(r"(v?ldr|v?str)", mnemonic):
        return "loads and stores"
    if re.match(r"b|cbn?z|tb[bh]|it", mnemonic) and not re.match(r"bic|bfc|bfi", mnemonic):
        return "branches"
    if mnemonic.startswith("v"):
        return "other float"
    return "other integer"


def read(path):
    regions, mix = 1, {}
    for line in open(path):
        name, count = line.split()
        if name == "regions":
            regions = int(count)
        else:
            mix[name] = int(count)
    if regions == 0:
        sys.exit(f"{path}: no region was measured")
    return {k: v / regions for k, v in mix.items()}


def summary(mix):
    low = sum(n * cost(k)[0] for k, n in mix.items())
    high = sum(n * cost(k)[1] for k, n in mix.items())
    groups = {}
    for k, n in mix.items():
        g = groups.setdefault(group(k), [0, 0, 0])
        g[0] += n
        g[1] += n * cost(k)[0]
        g[2] += n * cost(k)[1]
    return {"instructions": sum(mix.values()), "cycles_low": low, "cycles_high": high,
            "groups": {g: {"instructions": v[0], "cycles_low": v[1], "cycles_high": v[2]} for g, v in groups.items()}}


def main(argv):
    as_json = "--json" in argv
    runs = [a.split("=", 1) for a in argv if a != "--json"]
    if not runs or any(len(r) != 2 for r in runs):
        sys.exit(__doc__)
    table = {label: summary(read(path)) for label, path in runs}
    if as_json:
        print(json.dumps(table, indent=1))
        return
    m = lambda v: f"{v / 1e6:8.1f} M"  # noqa: E731
    print(f"{'per region':24s}" + "".join(f"{label:>26s}" for label in table))
    for key, name in (("instructions", "instructions"), ("cycles_low", "cycles (low)"), ("cycles_high", "cycles (high)")):
        print(f"{name:24s}" + "".join(f"{m(s[key]):>26s}" for s in table.values()))
    groups = sorted({g for s in table.values() for g in s["groups"]})
    print("cycles (low-high) by kind of instruction:")
    for g in groups:
        cells = []
        for s in table.values():
            v = s["groups"].get(g, {"cycles_low": 0, "cycles_high": 0})
            cells.append(f"{v['cycles_low'] / 1e6:.1f}-{v['cycles_high'] / 1e6:.1f} M")
        print(f"  {g:22s}" + "".join(f"{c:>26s}" for c in cells))
    if len(table) == 2:
        (a, sa), (b, sb) = table.items()
        print(f"{b} / {a}: instructions {sb['instructions'] / sa['instructions']:.2f}x, "
              f"estimated cycles {sb['cycles_low'] / sa['cycles_low']:.2f}x (low) to "
              f"{sb['cycles_high'] / sa['cycles_high']:.2f}x (high)")


if __name__ == "__main__":
    main(sys.argv[1:])

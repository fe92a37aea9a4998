/*
 * insnmix.c - QEMU TCG plugin (API v1, QEMU 7.2 as in Debian 12): how many times each
 * instruction mnemonic executed between two marker functions. QEMU models no cycles, and an
 * instruction count weighs a 1-cycle SMLAD like a 3-cycle VFMA.F32 or a 14-cycle VDIV.F32;
 * the mix is what scripts/m4-cycles.py turns into a Cortex-M4 cycle estimate.
 *
 * It sits beside ../shared/embedded/insncount.c (whose header subset it repeats, with
 * qemu_plugin_insn_disas added) and is loaded through run-qemu.sh's `--` pass-through:
 *
 *   gcc -O2 -shared -fPIC -o insnmix.so scripts/embedded/insnmix.c
 *   run-qemu.sh ELF -- -plugin ./insnmix.so,start=0xADDR,end=0xADDR,out=mix.txt
 *
 * Output: `regions N` then one `MNEMONIC COUNT` line per mnemonic, counts summed over the N
 * regions (from each entry of `start` to the next entry of `end`, callees included), most
 * frequent first. Mnemonics are the disassembler's first word, lower case, without the
 * `.w`/`.n` width suffix (`ldr`, `smlad`, `vfma.f32`, `bne`, `addeq`); those with a register
 * list (`push`, `pop`, `ldm`, `stm`, `vpush`, `vldmia`, ...) take 1 + N cycles, so their key
 * carries N: `push/5`.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- subset of QEMU 7.2 include/qemu/qemu-plugin.h ---------------------- */
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct qemu_info_t qemu_info_t; /* never dereferenced here */
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
char *qemu_plugin_insn_disas(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_op op,
                                                void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;
/* ------------------------------------------------------------------------- */

#define MAX_OPS 1024
/* count: executions since boot (inline counter); base: count when the open region began;
 * region: executions inside finished regions. Single vCPU (Cortex-M). */
static struct op { char name[24]; uint64_t count, base, region; } ops[MAX_OPS];
static struct op overflow = { "(other)", 0, 0, 0 };
static size_t n_ops;
static uint64_t mark_start = UINT64_MAX, mark_end = UINT64_MAX, regions;
static bool in_region;
static FILE *out;

/* The table entry of the mnemonic that starts `disas` (a linear scan: it runs once per
 * translated instruction, not per execution, and there are a few hundred mnemonics). */
static struct op *op_slot(const char *disas)
{
    char name[24];
    size_t len = 0;
    while (disas[len] && disas[len] != ' ' && disas[len] != '\t' && len + 1 < sizeof name) {
        char c = disas[len];
        name[len++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    name[len] = 0;
    if (len > 2 && name[len - 2] == '.' && (name[len - 1] == 'w' || name[len - 1] == 'n')) name[len - 2] = 0;
    const char *list = strchr(disas, '{');
    if (list) { /* registers in the list: commas + 1, plus the extra ones of each `r4-r11` range */
        unsigned n = 1;
        for (const char *c = list; *c && *c != '}'; c++) {
            if (*c == ',') n++;
            if (*c == '-') {
                const char *lo = c - 1, *hi = c + 1;
                while (lo > list && lo[-1] >= '0' && lo[-1] <= '9') lo--;
                while (*hi && (*hi < '0' || *hi > '9')) hi++;
                n += (unsigned)(atoi(hi) - atoi(lo));
            }
        }
        size_t at = strlen(name);
        snprintf(name + at, sizeof name - at, "/%u", n);
    }
    for (size_t i = 0; i < n_ops; i++)
        if (!strcmp(ops[i].name, name)) return &ops[i];
    if (n_ops == MAX_OPS) return &overflow;
    strcpy(ops[n_ops].name, name);
    return &ops[n_ops++];
}

static void on_start(unsigned int vcpu, void *u)
{
    (void)vcpu; (void)u;
    for (size_t i = 0; i < n_ops; i++) ops[i].base = ops[i].count;
    overflow.base = overflow.count;
    in_region = true;
}

static void on_end(unsigned int vcpu, void *u)
{
    (void)vcpu; (void)u;
    if (!in_region) return;
    in_region = false;
    regions++;
    /* An entry created during the region started at count 0, so base 0 is right for it. */
    for (size_t i = 0; i < n_ops; i++) ops[i].region += ops[i].count - ops[i].base;
    overflow.region += overflow.count - overflow.base;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t va = qemu_plugin_insn_vaddr(insn);
        /* marker callbacks first, so the marker instruction itself is not yet counted */
        if (va == mark_start) qemu_plugin_register_vcpu_insn_exec_cb(insn, on_start, QEMU_PLUGIN_CB_NO_REGS, NULL);
        if (va == mark_end) qemu_plugin_register_vcpu_insn_exec_cb(insn, on_end, QEMU_PLUGIN_CB_NO_REGS, NULL);
        char *disas = qemu_plugin_insn_disas(insn);
        struct op *slot = op_slot(disas ? disas : "(none)");
        free(disas); /* g_strdup'd; glib allocates with malloc */
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &slot->count, 1);
    }
}

static int by_region(const void *a, const void *b)
{
    const struct op *x = a, *y = b;
    return (x->region < y->region) - (x->region > y->region);
}

static void at_exit(qemu_plugin_id_t id, void *u)
{
    (void)id; (void)u;
    qsort(ops, n_ops, sizeof ops[0], by_region);
    fprintf(out, "regions %llu\n", (unsigned long long)regions);
    for (size_t i = 0; i < n_ops && ops[i].region; i++)
        fprintf(out, "%s %llu\n", ops[i].name, (unsigned long long)ops[i].region);
    if (overflow.region) fprintf(out, "%s %llu\n", overflow.name, (unsigned long long)overflow.region);
    fflush(out);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    out = stderr;
    for (int i = 0; i < argc; i++) {
        char *v = strchr(argv[i], '=');
        if (!v) { fprintf(stderr, "insnmix: bad option %s\n", argv[i]); return -1; }
        *v++ = 0;
        if (!strcmp(argv[i], "start")) mark_start = strtoull(v, NULL, 0) & ~1ULL;
        else if (!strcmp(argv[i], "end")) mark_end = strtoull(v, NULL, 0) & ~1ULL;
        else if (!strcmp(argv[i], "out")) {
            out = fopen(v, "w");
            if (!out) { perror(v); return -1; }
        } else { fprintf(stderr, "insnmix: unknown option %s\n", argv[i]); return -1; }
    }
    if (mark_start == UINT64_MAX || mark_end == UINT64_MAX) {
        fprintf(stderr, "insnmix: needs start= and end= (marker function addresses)\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}

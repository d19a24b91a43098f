/* QEMU TCG plugin: exact guest instruction counter for the Linux runner under qemu-aarch64.
 *
 * Every translated block adds its instruction count inline when it starts executing, so when the
 * guest reaches a system call the count covers every instruction up to and including the SVC.
 * The runner marks a measurement point with a system call number Linux does not use
 * (TCR_ICOUNT_SYSCALL, 0x7C01; QEMU answers -ENOSYS); on it the plugin stores the count into the
 * first 8 bytes of a file that the runner has mapped shared (plugin argument counter=PATH, the same
 * path the runner reads from TINYCONV_ICOUNT_FILE). The runner reads the value right after the call.
 *
 * qemu-plugin.h is not installed by Debian, so the few functions used are declared here, as
 * documented for QEMU 7.2's plugin API (QEMU_PLUGIN_VERSION 1, include/qemu/qemu-plugin.h).
 * Built with: cc -shared -fPIC -O2 icount_plugin.c -o icount_plugin.so
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- QEMU 7.2 plugin API (version 1) ---- */
typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num, uint64_t a1,
                                              uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                                              uint64_t a7, uint64_t a8);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_syscall_cb_t cb);
void qemu_plugin_outs(const char *string);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

#define TCR_ICOUNT_SYSCALL 0x7C01

static uint64_t insns;            /* the runner is single-threaded: one counter */
static volatile uint64_t *shared; /* the mapped file the runner reads */

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &insns, qemu_plugin_tb_n_insns(tb));
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2, uint64_t a3,
                       uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    (void)id; (void)vcpu; (void)a1; (void)a2; (void)a3; (void)a4; (void)a5; (void)a6; (void)a7; (void)a8;
    if (num == TCR_ICOUNT_SYSCALL && shared) *shared = insns;
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const void *info, int argc, char **argv)
{
    const char *path = 0;
    (void)info;
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], "counter=", 8) == 0) path = argv[i] + 8;
    if (!path) {
        qemu_plugin_outs("tinyconv icount plugin: needs counter=PATH\n");
        return -1;
    }
    int fd = open(path, O_RDWR);
    if (fd < 0) {
        qemu_plugin_outs("tinyconv icount plugin: cannot open the counter file\n");
        return -1;
    }
    void *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        qemu_plugin_outs("tinyconv icount plugin: cannot map the counter file\n");
        return -1;
    }
    shared = (volatile uint64_t *)p;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    return 0;
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// Measurement prototype: the socket-filter design's transport alone, without kascope's
// analysis behind it, so that its user-space CPU compares with consumer.c's. Opens IFNAME
// with libpcap as kascope does (immediate mode, TPACKET_V3 ring), attaches kascope's own
// program (src/bpf/shed.bpf.c, compiled by run.sh, its shed map left empty: nothing is
// shed) with SO_ATTACH_BPF in place of a classic filter, and counts frames and bytes until
// SIGINT/SIGTERM. Then it prints
//
//   frames F bytes B run_cnt N run_time_ns T drops D
//
// usage: sockf-null OBJ IFNAME [batch]
//   batch: libpcap's buffered mode with a 1 ms timeout (TPACKET_V3 blocks handed over when
//          full or after 1 ms) instead of immediate mode (a wake-up per packet)

#include <errno.h>
#include <sys/types.h>
// <pcap/bpf.h> and <linux/bpf.h> both define struct bpf_insn: keep libpcap's out, declaring
// the two names its prototypes use.
#define lib_pcap_bpf_h
typedef u_int bpf_u_int32;
typedef int bpf_int32;
struct bpf_program;
#include <pcap/pcap.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static pcap_t *pcap;
static unsigned long long frames, bytes;

static void on_signal(int sig) { (void)sig; pcap_breakloop(pcap); }

static void on_frame(u_char *user, const struct pcap_pkthdr *h, const u_char *data)
{
	(void)user; (void)data;
	frames++;
	bytes += h->caplen;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "sockf-null: %s: %s\n", what, why);
	exit(1);
}

int main(int argc, char **argv)
{
	char err[PCAP_ERRBUF_SIZE];
	if (argc != 3 && !(argc == 4 && strcmp(argv[3], "batch") == 0)) {
		fprintf(stderr, "usage: sockf-null OBJ IFNAME [batch]\n");
		return 2;
	}
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (libbpf_get_error(obj) || bpf_object__load(obj))
		die(argv[1], "cannot load");
	int prog = bpf_program__fd(bpf_object__find_program_by_name(obj, "shed_bodies"));
	if (!(pcap = pcap_create(argv[2], err)))
		die(argv[2], err);
	pcap_set_snaplen(pcap, 262144);
	if (argc == 4)
		pcap_set_timeout(pcap, 1);
	else
		pcap_set_immediate_mode(pcap, 1);
	pcap_set_buffer_size(pcap, 32 << 20);
	if (pcap_activate(pcap) < 0)
		die(argv[2], pcap_geterr(pcap));
	if (setsockopt(pcap_fileno(pcap), SOL_SOCKET, SO_ATTACH_BPF, &prog, sizeof(prog)) < 0)
		die("SO_ATTACH_BPF", strerror(errno));
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	fprintf(stderr, "sockf-null: capturing on %s\n", argv[2]);
	while (pcap_dispatch(pcap, -1, on_frame, NULL) >= 0)
		;
	struct pcap_stat st = {};
	pcap_stats(pcap, &st);
	struct bpf_prog_info info = {};
	unsigned int len = sizeof(info);
	bpf_obj_get_info_by_fd(prog, &info, &len);
	printf("frames %llu bytes %llu run_cnt %llu run_time_ns %llu drops %u\n", frames, bytes,
	       (unsigned long long)info.run_cnt, (unsigned long long)info.run_time_ns, st.ps_drop);
	pcap_close(pcap);
	bpf_object__close(obj);
	return 0;
}

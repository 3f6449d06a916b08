// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// Measurement prototype: loads tc.bpf.o (built by run.sh), attaches its two programs to the
// clsact ingress and egress hooks of IFNAME, drains the ring buffer until SIGINT/SIGTERM
// and counts records and bytes. It does what a real consumer would do at the least: read
// each record's fixed part and the payload length. Then it prints one line of counts:
//
//   records R record_bytes B payload_copied P tcp_seen S drops D run_cnt N run_time_ns T
//
// run_cnt and run_time_ns are the kernel's BPF statistics of both programs together (they
// count only while kernel.bpf_stats_enabled=1). The clsact qdisc is removed on exit; one a
// killed consumer leaves behind goes with the network namespace.
//
// usage: consumer OBJ IFNAME [poll]
//   poll: drain every millisecond instead of waiting for a wake-up (for an object built
//         with SUBMIT_FLAGS=BPF_RB_NO_WAKEUP, which never wakes it)

#include <errno.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

struct record_head { // tc.bpf.c's struct record without data[]
	unsigned long long ts_ns;
	unsigned char src[16], dst[16];
	unsigned short sport, dport;
	unsigned int seq, ack;
	unsigned short window;
	unsigned char flags, egress;
	unsigned int payload_len, copied;
};

static volatile sig_atomic_t stop;
static unsigned long long records, record_bytes, payload_copied, checksum, egress_records, payload_bytes, max_payload;

static void on_signal(int sig) { (void)sig; stop = 1; }

static int on_record(void *ctx, void *data, size_t size)
{
	const struct record_head *r = data;
	(void)ctx;
	records++;
	record_bytes += size;
	payload_copied += r->copied;
	checksum += r->seq ^ r->payload_len; // touch the record, as a parser would
	egress_records += r->egress;
	payload_bytes += r->payload_len;
	if (r->payload_len > max_payload)
		max_payload = r->payload_len;
	return 0;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "consumer: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

int main(int argc, char **argv)
{
	if (argc != 3 && !(argc == 4 && strcmp(argv[3], "poll") == 0)) {
		fprintf(stderr, "usage: consumer OBJ IFNAME [poll]\n");
		return 2;
	}
	int ifindex = if_nametoindex(argv[2]);
	if (!ifindex)
		die(argv[2], errno);
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	int err = libbpf_get_error(obj);
	if (err)
		die("open", err);
	if ((err = bpf_object__load(obj)))
		die("load", err);

	const char *names[2] = {"tc_ingress", "tc_egress"};
	enum bpf_tc_attach_point points[2] = {BPF_TC_INGRESS, BPF_TC_EGRESS};
	int prog_fd[2];
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		die("clsact qdisc", err);
	for (int i = 0; i < 2; i++) {
		struct bpf_program *p = bpf_object__find_program_by_name(obj, names[i]);
		if (!p)
			die(names[i], ENOENT);
		prog_fd[i] = bpf_program__fd(p);
		LIBBPF_OPTS(bpf_tc_hook, h, .ifindex = ifindex, .attach_point = points[i]);
		LIBBPF_OPTS(bpf_tc_opts, o, .prog_fd = prog_fd[i], .handle = 1, .priority = 1);
		if ((err = bpf_tc_attach(&h, &o)))
			die("attach", err);
	}

	struct ring_buffer *rb = ring_buffer__new(bpf_object__find_map_fd_by_name(obj, "records"),
						  on_record, NULL, NULL);
	if (!rb)
		die("ring buffer", errno);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	fprintf(stderr, "consumer: attached to %s ingress and egress\n", argv[2]);
	int timer = argc == 4;
	while (!stop) {
		if (timer) {
			err = ring_buffer__consume(rb);
			usleep(1000);
		} else {
			err = ring_buffer__poll(rb, 100);
		}
		if (err < 0 && err != -EINTR)
			die("poll", err);
	}
	ring_buffer__consume(rb);

	int ncpu = libbpf_num_possible_cpus();
	unsigned long long sums[2] = {0, 0}, *vals = calloc(ncpu, sizeof(*vals));
	int cfd = bpf_object__find_map_fd_by_name(obj, "counters");
	for (unsigned int k = 0; k < 2; k++) {
		if (bpf_map_lookup_elem(cfd, &k, vals) == 0)
			for (int c = 0; c < ncpu; c++)
				sums[k] += vals[c];
	}
	unsigned long long run_cnt = 0, run_time = 0;
	for (int i = 0; i < 2; i++) {
		struct bpf_prog_info info = {};
		unsigned int len = sizeof(info);
		if (bpf_obj_get_info_by_fd(prog_fd[i], &info, &len) == 0) {
			run_cnt += info.run_cnt;
			run_time += info.run_time_ns;
		}
	}
	printf("records %llu record_bytes %llu payload_copied %llu tcp_seen %llu drops %llu run_cnt %llu run_time_ns %llu\n",
	       records, record_bytes, payload_copied, sums[0], sums[1], run_cnt, run_time);
	fprintf(stderr, "consumer: %llu egress records, %llu payload bytes, largest payload %llu (checksum %llx)\n",
		egress_records, payload_bytes, max_payload, checksum);
	hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
	bpf_tc_hook_destroy(&hook);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}

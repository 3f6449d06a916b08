// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// Measurement prototype, not a kascope feature: the design docs/ebpf.md did not choose. A TC
// clsact program on ingress and egress of one interface that, for every TCP packet, reserves
// a BPF ring-buffer record with the header facts kascope's pipeline needs, plus the first
// PAYLOAD_MAX payload bytes (0: headers only; 256: copied with bpf_skb_load_bytes). It always
// returns TC_ACT_OK: the packet goes on untouched. Failed reservations are counted.
//
// Parsing is src/bpf/shed.bpf.c's (Ethernet, up to two VLAN tags, IPv4/IPv6, the same
// bpf_skb_load_bytes reads), so the two designs differ only in where the bytes go.
// The shed decision (the map lookup) is left out: it costs the same in both designs.

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef PAYLOAD_MAX
#define PAYLOAD_MAX 0
#endif
// 0: the kernel's adaptive wake-up (the consumer is woken when it has caught up);
// BPF_RB_NO_WAKEUP: never, the consumer polls on a timer.
#ifndef SUBMIT_FLAGS
#define SUBMIT_FLAGS 0
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct record {
	__u64 ts_ns;        // bpf_ktime_get_ns (monotonic)
	__u8 src[16];       // IPv4 stored IPv4-mapped, as in shed.bpf.c
	__u8 dst[16];
	__u16 sport;        // network byte order
	__u16 dport;
	__u32 seq;
	__u32 ack;
	__u16 window;
	__u8 flags;
	__u8 egress;        // 1: egress hook, 0: ingress
	__u32 payload_len;  // the TCP payload length of the packet (a super-packet's whole)
	__u32 copied;       // payload bytes in data[]
#if PAYLOAD_MAX > 0
	__u8 data[PAYLOAD_MAX];
#endif
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} records SEC(".maps");

// 0: TCP packets seen, 1: failed reservations (ring full).
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define IPPROTO_TCP 6

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);
	if (c)
		*c += 1;
}

static __always_inline int handle(struct __sk_buff *skb, __u8 egress)
{
	__u16 ethertype, proto;
	__u32 off = 14;
	if (bpf_skb_load_bytes(skb, 12, &ethertype, 2) < 0)
		return TC_ACT_OK;
	proto = bpf_ntohs(ethertype);
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
			break;
		if (bpf_skb_load_bytes(skb, off + 2, &ethertype, 2) < 0)
			return TC_ACT_OK;
		proto = bpf_ntohs(ethertype);
		off += 4;
	}

	__u8 src[16] = {}, dst[16] = {};
	__u32 tcp_off, ip_payload;
	if (proto == ETH_P_IP) {
		__u8 ip[20];
		if (bpf_skb_load_bytes(skb, off, ip, sizeof(ip)) < 0 || ip[9] != IPPROTO_TCP)
			return TC_ACT_OK;
		__u32 ihl = (ip[0] & 0x0f) * 4;
		__u32 total = ((__u32)ip[2] << 8) | ip[3];
		if (((ip[6] & 0x3f) | ip[7]) != 0 || ihl < 20 || total < ihl)
			return TC_ACT_OK; // fragments: out of the prototype's scope
		src[10] = src[11] = dst[10] = dst[11] = 0xff;
		__builtin_memcpy(&src[12], &ip[12], 4);
		__builtin_memcpy(&dst[12], &ip[16], 4);
		tcp_off = off + ihl;
		ip_payload = total - ihl;
	} else if (proto == ETH_P_IPV6) {
		__u8 ip6[40];
		if (bpf_skb_load_bytes(skb, off, ip6, sizeof(ip6)) < 0 || ip6[6] != IPPROTO_TCP)
			return TC_ACT_OK;
		__builtin_memcpy(src, &ip6[8], 16);
		__builtin_memcpy(dst, &ip6[24], 16);
		tcp_off = off + 40;
		ip_payload = ((__u32)ip6[4] << 8) | ip6[5];
	} else {
		return TC_ACT_OK;
	}

	__u8 tcp[20];
	if (bpf_skb_load_bytes(skb, tcp_off, tcp, sizeof(tcp)) < 0)
		return TC_ACT_OK;
	__u32 doff = (tcp[12] >> 4) * 4;
	if (doff < 20 || ip_payload < doff)
		return TC_ACT_OK;
	count(0);

	struct record *r = bpf_ringbuf_reserve(&records, sizeof(*r), 0);
	if (!r) {
		count(1);
		return TC_ACT_OK;
	}
	r->ts_ns = bpf_ktime_get_ns();
	__builtin_memcpy(r->src, src, 16);
	__builtin_memcpy(r->dst, dst, 16);
	__builtin_memcpy(&r->sport, &tcp[0], 2);
	__builtin_memcpy(&r->dport, &tcp[2], 2);
	r->seq = ((__u32)tcp[4] << 24) | ((__u32)tcp[5] << 16) | ((__u32)tcp[6] << 8) | tcp[7];
	r->ack = ((__u32)tcp[8] << 24) | ((__u32)tcp[9] << 16) | ((__u32)tcp[10] << 8) | tcp[11];
	r->window = ((__u16)tcp[14] << 8) | tcp[15];
	r->flags = tcp[13];
	r->egress = egress;
	r->payload_len = ip_payload - doff;
	r->copied = 0;
#if PAYLOAD_MAX > 0
	__u32 len = r->payload_len;
	if (len > PAYLOAD_MAX)
		len = PAYLOAD_MAX;
	if (len > 0 && bpf_skb_load_bytes(skb, tcp_off + doff, r->data, len) == 0)
		r->copied = len;
#endif
	bpf_ringbuf_submit(r, SUBMIT_FLAGS);
	return TC_ACT_OK;
}

SEC("tc")
int tc_ingress(struct __sk_buff *skb)
{
	return handle(skb, 0);
}

SEC("tc")
int tc_egress(struct __sk_buff *skb)
{
	return handle(skb, 1);
}

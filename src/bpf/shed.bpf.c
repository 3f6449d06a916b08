// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// kascope's eBPF socket filter, attached to libpcap's AF_PACKET socket in place of its
// classic BPF filter (`--ebpf`). Its return value is the number of bytes of the packet that
// reach user space: a per-packet snaplen.
//
// - Not TCP: 0, the packet is not captured (the classic filter it replaces was `tcp`).
// - A TCP segment whose payload lies wholly inside a range user space wrote into `shed`
//   for its direction (body bytes the HTTP framer only counts): its headers only. User
//   space sees the frame cut exactly at the end of the TCP header and reads the payload it
//   was not given as known and skipped, not lost.
// - Anything else: the packet up to `snaplen`, but never cut exactly at the end of the TCP
//   header, which would read as shed.
//
// Packet programs parse bytes and need no vmlinux.h. Socket filters have no direct packet
// access: everything is read with bpf_skb_load_bytes, which also copes with paged skbs and
// GSO/GRO super-packets (their IP length is the whole super-packet's).

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

// Where the IP header starts: after an Ethernet header (and VLAN tags still in the data),
// or at once (cooked `any` captures and raw-IP interfaces, SOCK_DGRAM-style).
#define LINK_ETHERNET 1
#define LINK_IP 0

const volatile __u32 link_layer = LINK_ETHERNET;
const volatile __u32 snaplen = 262144;

// One direction of a connection: the sender first. IPv4 addresses are stored IPv4-mapped
// (::ffff:a.b.c.d); ports in network byte order, as on the wire.
struct flow_key {
	__u8 src[16];
	__u8 dst[16];
	__u16 sport;
	__u16 dport;
};

// Payload bytes with sequence numbers in [lo, hi) are not needed (wrapping arithmetic).
struct shed_range {
	__u32 lo;
	__u32 hi;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow_key);
	__type(value, struct shed_range);
} shed SEC(".maps");

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define IPPROTO_TCP 6

static __always_inline __u32 keep_all(struct __sk_buff *skb, __u32 headers, __u32 payload)
{
	__u32 keep = skb->len < snaplen ? skb->len : snaplen;
	if (payload > 0 && keep == headers)
		keep = headers + 1;
	return keep;
}

SEC("socket")
int shed_bodies(struct __sk_buff *skb)
{
	__u32 off = 0;
	__u16 proto = bpf_ntohs((__u16)skb->protocol);
	if (link_layer == LINK_ETHERNET) {
		__u16 ethertype;
		if (bpf_skb_load_bytes(skb, 12, &ethertype, 2) < 0)
			return 0;
		off = 14;
		proto = bpf_ntohs(ethertype);
#pragma unroll
		for (int i = 0; i < 2; i++) {
			if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
				break;
			if (bpf_skb_load_bytes(skb, off + 2, &ethertype, 2) < 0)
				return 0;
			proto = bpf_ntohs(ethertype);
			off += 4;
		}
	}

	struct flow_key key = {};
	__u32 tcp_off, ip_payload;
	if (proto == ETH_P_IP) {
		__u8 ip[20];
		if (bpf_skb_load_bytes(skb, off, ip, sizeof(ip)) < 0)
			return 0;
		if (ip[9] != IPPROTO_TCP)
			return 0;
		__u32 ihl = (ip[0] & 0x0f) * 4;
		__u32 total = ((__u32)ip[2] << 8) | ip[3];
		// Fragments go up whole: user space puts them back together.
		if (((ip[6] & 0x3f) | ip[7]) != 0 || ihl < 20 || total < ihl)
			return keep_all(skb, 0, 0);
		key.src[10] = 0xff;
		key.src[11] = 0xff;
		key.dst[10] = 0xff;
		key.dst[11] = 0xff;
		__builtin_memcpy(&key.src[12], &ip[12], 4);
		__builtin_memcpy(&key.dst[12], &ip[16], 4);
		tcp_off = off + ihl;
		ip_payload = total - ihl;
	} else if (proto == ETH_P_IPV6) {
		__u8 ip6[40];
		if (bpf_skb_load_bytes(skb, off, ip6, sizeof(ip6)) < 0)
			return 0;
		// Extension headers: not walked; such segments go up whole.
		if (ip6[6] != IPPROTO_TCP)
			return keep_all(skb, 0, 0);
		__builtin_memcpy(key.src, &ip6[8], 16);
		__builtin_memcpy(key.dst, &ip6[24], 16);
		tcp_off = off + 40;
		ip_payload = ((__u32)ip6[4] << 8) | ip6[5];
	} else {
		return 0;
	}

	__u8 tcp[20];
	if (bpf_skb_load_bytes(skb, tcp_off, tcp, sizeof(tcp)) < 0)
		return keep_all(skb, 0, 0);
	__u32 doff = (tcp[12] >> 4) * 4;
	if (doff < 20 || ip_payload < doff)
		return keep_all(skb, 0, 0);
	__u32 headers = tcp_off + doff;
	__u32 payload = ip_payload - doff;
	if (payload == 0)
		return keep_all(skb, headers, 0);

	__builtin_memcpy(&key.sport, &tcp[0], 2);
	__builtin_memcpy(&key.dport, &tcp[2], 2);
	struct shed_range *range = bpf_map_lookup_elem(&shed, &key);
	if (range) {
		__u32 seq = ((__u32)tcp[4] << 24) | ((__u32)tcp[5] << 16) | ((__u32)tcp[6] << 8) | tcp[7];
		__u32 span = range->hi - range->lo;
		__u32 from = seq - range->lo;
		// SYNs carry no body; the whole payload must lie in the range.
		if (!(tcp[13] & 0x02) && from <= span && payload <= span - from)
			return headers;
	}
	return keep_all(skb, headers, payload);
}

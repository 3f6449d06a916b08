// SPDX-License-Identifier: GPL-2.0
//
// A TC program for tests/ebpf.rs: drops the 200th and the 2000th full-sized packet it sees
// after it is attached (to the client's ingress), so a download loses two segments on the
// way and TCP retransmits them. No netem or u32 classifier is needed, only cls_bpf.

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

SEC("tc")
int drop_two(struct __sk_buff *skb)
{
	if (skb->len < 1000)
		return TC_ACT_OK;
	__u32 key = 0;
	__u64 *count = bpf_map_lookup_elem(&seen, &key);
	if (!count)
		return TC_ACT_OK;
	__u64 n = __sync_fetch_and_add(count, 1);
	return n == 199 || n == 1999 ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";

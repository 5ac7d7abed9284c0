// SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only
//
// ferroturn's kernel fast path: a TC clsact ingress program that forwards ChannelData <-> UDP
// for channel bindings the relay's shards put into two hash maps.
//
//   client -> listener, ChannelData on a bound (client 5-tuple, channel): strip the 4-byte
//     header (and its padding), send from the relay address to the peer;
//   peer -> relay port, from a peer with a bound channel: prepend the ChannelData header,
//     send from the listener address to the client;
//   client A -> channel -> relay A -> relay B on this host -> client B (two allocations of
//     this relay talking to each other): rewritten in one step.
//
// Anything else - STUN, Send/Data indications, unknown channels, VLAN tags, IP options,
// fragments, GSO packets, zero IPv6 checksums, packets the egress MTU cannot carry, lapsed
// bindings - returns TC_ACT_OK untouched, so user space (the complete implementation) sees
// it. Checksums are updated through bpf_l4_csum_replace, which knows whether the skb carries
// a full checksum or a CHECKSUM_PARTIAL one (veth, virtio) that the egress device completes;
// headers never move, only the payload does, so csum_start stays right.
//
// Keep the structs below byte for byte equal to src/runtime/fast_path/maps.rs.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define MAX_ROUTES 65536
/* Largest UDP payload moved: an Ethernet MTU's worth and then some; larger goes to user space. */
#define MAX_PAYLOAD 2040
#define SCRATCH_LEN 2048
#define L3_OFF ETH_HLEN
#define L4_OFF_V4 (L3_OFF + sizeof(struct iphdr))
#define L4_OFF_V6 (L3_OFF + sizeof(struct ipv6hdr))
#define CHANNEL_HDR 4
#define OUT_TTL 64
#define IP_DF 0x4000
#define IP_MF_OFFSET 0x3fff

/* Indices of the per-CPU totals. */
#define TOTAL_TO_PEER 0
#define TOTAL_TO_CLIENT 1
#define TOTAL_HAIRPIN 2
#define TOTAL_FAILED 3
#define TOTALS 4

/* A packet's addresses, IPv4 in word 0 (network order). */
struct ft_addr {
	__u32 w[4];
};

/* What a client sends to a listener: (client, listener, channel). Ports in network order. */
struct ft_c2p_key {
	struct ft_addr client;
	struct ft_addr listener;
	__u16 client_port;
	__u16 listener_port;
	__u16 channel; /* host order */
	__u8 family;   /* 4 or 6 */
	__u8 pad;
};

/* What a peer sends to a relay port: (peer, relay). */
struct ft_p2c_key {
	struct ft_addr peer;
	struct ft_addr relay;
	__u16 peer_port;
	__u16 relay_port;
	__u8 family;
	__u8 pad[3];
};

/* Where a matching packet goes: from src to dst out of ifindex. */
struct ft_route {
	struct ft_addr src;
	struct ft_addr dst;
	__u16 src_port;
	__u16 dst_port;
	__u16 channel; /* p2c: the number to prepend (host order) */
	__u16 flags;
	__u32 ifindex; /* 0: the destination is this host (only the hairpin case forwards) */
	__u32 pad;
	__u64 expires_ns; /* CLOCK_MONOTONIC; the kernel stops at this instant by itself */
	__u64 packets;
	__u64 bytes;
};

_Static_assert(sizeof(struct ft_c2p_key) == 40, "maps.rs C2pKey");
_Static_assert(sizeof(struct ft_p2c_key) == 40, "maps.rs P2cKey");
_Static_assert(sizeof(struct ft_route) == 72, "maps.rs Route");

struct ft_total {
	__u64 packets;
	__u64 bytes;
};

struct ft_scratch {
	__u8 buf[SCRATCH_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ROUTES);
	__type(key, struct ft_c2p_key);
	__type(value, struct ft_route);
} FT_C2P SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ROUTES);
	__type(key, struct ft_p2c_key);
	__type(value, struct ft_route);
} FT_P2C SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TOTALS);
	__type(key, __u32);
	__type(value, struct ft_total);
} FT_TOTALS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ft_scratch);
} FT_SCRATCH SEC(".maps");

/* The parsed headers of a UDP datagram, in network order unless said otherwise. */
struct pkt {
	struct ft_addr saddr;
	struct ft_addr daddr;
	__u16 sport;
	__u16 dport;
	__u16 ulen;   /* host order: UDP length incl. header */
	__u16 check;  /* as on the wire */
	__u32 l4;     /* offset of the UDP header */
	__u32 end;    /* offset just past the IP datagram (Ethernet padding excluded) */
	__u8 family;
};

static __always_inline void count_total(__u32 index, __u64 bytes)
{
	struct ft_total *t = bpf_map_lookup_elem(&FT_TOTALS, &index);
	if (t) {
		t->packets += 1;
		t->bytes += bytes;
	}
}

static __always_inline void count_route(struct ft_route *r, __u64 bytes)
{
	__sync_fetch_and_add(&r->packets, 1);
	__sync_fetch_and_add(&r->bytes, bytes);
}

/* Parses Ethernet + IPv4/IPv6 + UDP; 0 when the packet is one this program may handle. */
static __always_inline int parse(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct udphdr *udp;

	if ((void *)(eth + 1) > data_end)
		return -1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end)
			return -1;
		/* IP options and fragments are left to the kernel's own stack. */
		if (ip->ihl != 5 || ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(IP_MF_OFFSET)))
			return -1;
		udp = (void *)(ip + 1);
		if ((void *)(udp + 1) > data_end)
			return -1;
		__u16 tot = bpf_ntohs(ip->tot_len);
		p->family = 4;
		p->saddr.w[0] = ip->saddr;
		p->daddr.w[0] = ip->daddr;
		p->l4 = L4_OFF_V4;
		p->end = L3_OFF + tot;
		if (tot < sizeof(struct iphdr) + sizeof(struct udphdr))
			return -1;
		p->ulen = bpf_ntohs(udp->len);
		if (p->ulen != tot - sizeof(struct iphdr))
			return -1;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end)
			return -1;
		/* Extension headers (fragments among them) go to user space. */
		if (ip6->nexthdr != IPPROTO_UDP)
			return -1;
		udp = (void *)(ip6 + 1);
		if ((void *)(udp + 1) > data_end)
			return -1;
		p->family = 6;
		__builtin_memcpy(&p->saddr, &ip6->saddr, 16);
		__builtin_memcpy(&p->daddr, &ip6->daddr, 16);
		p->l4 = L4_OFF_V6;
		__u16 plen = bpf_ntohs(ip6->payload_len);
		p->end = L4_OFF_V6 + plen;
		p->ulen = bpf_ntohs(udp->len);
		if (p->ulen != plen || plen < sizeof(struct udphdr))
			return -1;
		/* A zero checksum is not allowed over IPv6: let the stack drop and count it. */
		if (udp->check == 0)
			return -1;
	} else {
		return -1;
	}
	if (p->end > skb->len)
		return -1;
	p->sport = udp->source;
	p->dport = udp->dest;
	p->check = udp->check;
	return 0;
}

/* Rewrites the IP header for the new addresses and length (IPv4: TTL, DF and checksum too). */
static __always_inline int write_ip(struct __sk_buff *skb, struct pkt *p, struct ft_route *r,
				    __u16 new_ulen)
{
	if (p->family == 4) {
		struct iphdr ip;
		if (bpf_skb_load_bytes(skb, L3_OFF, &ip, sizeof(ip)))
			return -1;
		ip.saddr = r->src.w[0];
		ip.daddr = r->dst.w[0];
		ip.tot_len = bpf_htons(sizeof(struct iphdr) + new_ulen);
		ip.ttl = OUT_TTL;
		/* Every forwarded packet fits the egress MTU (checked before): DF as Linux sets it
		 * for a UDP socket, so a DONT-FRAGMENT allocation gets it and path MTU discovery
		 * works for the others. */
		ip.frag_off = bpf_htons(IP_DF);
		ip.check = 0;
		__s64 sum = bpf_csum_diff(0, 0, (__be32 *)&ip, sizeof(ip), 0);
		if (sum < 0)
			return -1;
		__u32 s = (__u32)sum;
		s = (s & 0xffff) + (s >> 16);
		s = (s & 0xffff) + (s >> 16);
		ip.check = (__u16)~s;
		return bpf_skb_store_bytes(skb, L3_OFF, &ip, sizeof(ip), BPF_F_RECOMPUTE_CSUM);
	}
	struct ipv6hdr ip6;
	if (bpf_skb_load_bytes(skb, L3_OFF, &ip6, sizeof(ip6)))
		return -1;
	__builtin_memcpy(&ip6.saddr, &r->src, 16);
	__builtin_memcpy(&ip6.daddr, &r->dst, 16);
	ip6.payload_len = bpf_htons(new_ulen);
	ip6.hop_limit = OUT_TTL;
	return bpf_skb_store_bytes(skb, L3_OFF, &ip6, sizeof(ip6), BPF_F_RECOMPUTE_CSUM);
}

/* Updates the UDP checksum for new addresses, ports and length, plus `removed`/`added`
 * 4-byte words of payload that disappear or appear at even offsets. The pseudo-header part
 * applies to full and CHECKSUM_PARTIAL checksums alike; the rest only to full ones (the
 * device sums the data of a partial one itself). An IPv4 datagram without checksum keeps
 * none. */
static __always_inline int fix_udp_csum(struct __sk_buff *skb, struct pkt *p, struct ft_route *r,
					__u16 new_ulen, __u32 removed0, __u32 removed1, __u32 added)
{
	if (p->check == 0)
		return 0;
	__u32 off = p->l4 + offsetof(struct udphdr, check);
	__u64 pseudo = BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0;
	__s64 diff;
	if (p->family == 4)
		diff = bpf_csum_diff(&p->saddr.w[0], 4, (__be32 *)&r->src.w[0], 4, 0);
	else
		diff = bpf_csum_diff(p->saddr.w, 16, (__be32 *)r->src.w, 16, 0);
	if (diff < 0)
		return -1;
	if (p->family == 4)
		diff = bpf_csum_diff(&p->daddr.w[0], 4, (__be32 *)&r->dst.w[0], 4, (__u32)diff);
	else
		diff = bpf_csum_diff(p->daddr.w, 16, (__be32 *)r->dst.w, 16, (__u32)diff);
	if (diff < 0)
		return -1;
	if (bpf_l4_csum_replace(skb, off, 0, (__u32)diff, pseudo | 0))
		return -1;
	if (bpf_l4_csum_replace(skb, off, bpf_htons(p->ulen), bpf_htons(new_ulen), pseudo | 2))
		return -1;
	/* The UDP header and payload: full checksums only (the flag-less form). */
	__u32 old_ports = ((__u32)p->dport << 16) | p->sport;
	__u32 new_ports = ((__u32)r->dst_port << 16) | r->src_port;
	__u64 data = BPF_F_MARK_MANGLED_0;
	if (bpf_l4_csum_replace(skb, off, old_ports, new_ports, data | 4))
		return -1;
	if (bpf_l4_csum_replace(skb, off, bpf_htons(p->ulen), bpf_htons(new_ulen), data | 2))
		return -1;
	if (removed0 && bpf_l4_csum_replace(skb, off, removed0, 0, data | 4))
		return -1;
	if (removed1 && bpf_l4_csum_replace(skb, off, removed1, 0, data | 4))
		return -1;
	if (added && bpf_l4_csum_replace(skb, off, 0, added, data | 4))
		return -1;
	return 0;
}

static __always_inline int write_ports(struct __sk_buff *skb, struct pkt *p, struct ft_route *r,
				       __u16 new_ulen)
{
	struct {
		__u16 source;
		__u16 dest;
		__u16 len;
	} h = {r->src_port, r->dst_port, bpf_htons(new_ulen)};
	return bpf_skb_store_bytes(skb, p->l4, &h, sizeof(h), BPF_F_RECOMPUTE_CSUM);
}

/* Moves `n` payload bytes from offset `from` to `to` within the packet. */
static __always_inline int move_payload(struct __sk_buff *skb, __u32 from, __u32 to, __u32 n)
{
	if (n == 0)
		return 0;
	__u32 zero = 0;
	struct ft_scratch *s = bpf_map_lookup_elem(&FT_SCRATCH, &zero);
	if (!s)
		return -1;
	n &= 0x7ff; /* a no-op after the caller's MAX_PAYLOAD check; bounds it for the verifier */
	if (n == 0 || n > MAX_PAYLOAD)
		return -1;
	if (bpf_skb_load_bytes(skb, from, s->buf, n))
		return -1;
	return bpf_skb_store_bytes(skb, to, s->buf, n, BPF_F_RECOMPUTE_CSUM);
}

static __always_inline int mtu_fits(struct __sk_buff *skb, __u32 ifindex, __s32 delta)
{
	__u32 mtu = 0;
	return bpf_check_mtu(skb, ifindex, &mtu, delta, 0) == BPF_MTU_CHK_RET_SUCCESS;
}

static __always_inline int live(struct ft_route *r, __u64 now)
{
	return r->expires_ns > now;
}

/* peer -> relay port: prepend the ChannelData header and send to the client. */
static __always_inline int to_client(struct __sk_buff *skb, struct pkt *p, struct ft_route *r)
{
	__u32 n = p->ulen - sizeof(struct udphdr);
	if (n > MAX_PAYLOAD || r->ifindex == 0 || !mtu_fits(skb, r->ifindex, CHANNEL_HDR))
		return TC_ACT_OK;
	__u16 new_ulen = p->ulen + CHANNEL_HDR;
	__u32 header = ((__u32)bpf_htons(n) << 16) | bpf_htons(r->channel);
	/* From here on the packet is changed: a failure can only drop it. */
	if (bpf_skb_change_tail(skb, p->end + CHANNEL_HDR, 0))
		goto failed;
	if (fix_udp_csum(skb, p, r, new_ulen, 0, 0, header))
		goto failed;
	__u32 payload = p->l4 + sizeof(struct udphdr);
	if (move_payload(skb, payload, payload + CHANNEL_HDR, n))
		goto failed;
	if (bpf_skb_store_bytes(skb, payload, &header, 4, BPF_F_RECOMPUTE_CSUM))
		goto failed;
	if (write_ports(skb, p, r, new_ulen) || write_ip(skb, p, r, new_ulen))
		goto failed;
	count_route(r, n);
	count_total(TOTAL_TO_CLIENT, n);
	return bpf_redirect_neigh(r->ifindex, 0, 0, 0);
failed:
	count_total(TOTAL_FAILED, n);
	return TC_ACT_SHOT;
}

/* client -> listener, ChannelData on channel `r`: strip the header and send to the peer. */
static __always_inline int to_peer(struct __sk_buff *skb, struct pkt *p, struct ft_route *r,
				   __u32 header, __u16 dlen, __u32 pad, __u64 now)
{
	/* Another allocation of this relay is the peer: straight to its client. */
	struct ft_p2c_key hk = {};
	hk.peer = r->src;
	hk.relay = r->dst;
	hk.peer_port = r->src_port;
	hk.relay_port = r->dst_port;
	hk.family = p->family;
	struct ft_route *h = bpf_map_lookup_elem(&FT_P2C, &hk);
	if (h && live(h, now) && pad == 0 && h->ifindex) {
		if (!mtu_fits(skb, h->ifindex, 0))
			return TC_ACT_OK;
		__u32 new_header = ((__u32)bpf_htons(dlen) << 16) | bpf_htons(h->channel);
		if (fix_udp_csum(skb, p, h, p->ulen, header, 0, new_header))
			goto failed;
		if (bpf_skb_store_bytes(skb, p->l4 + sizeof(struct udphdr), &new_header, 4,
					BPF_F_RECOMPUTE_CSUM))
			goto failed;
		if (write_ports(skb, p, h, p->ulen) || write_ip(skb, p, h, p->ulen))
			goto failed;
		count_route(r, dlen);
		count_route(h, dlen);
		count_total(TOTAL_TO_PEER, dlen);
		count_total(TOTAL_TO_CLIENT, dlen);
		count_total(TOTAL_HAIRPIN, dlen);
		return bpf_redirect_neigh(h->ifindex, 0, 0, 0);
	}
	if (r->ifindex == 0 || dlen > MAX_PAYLOAD)
		return TC_ACT_OK;
	__s32 shrink = CHANNEL_HDR + pad;
	if (!mtu_fits(skb, r->ifindex, -shrink))
		return TC_ACT_OK;
	__u16 new_ulen = sizeof(struct udphdr) + dlen;
	/* The padding's bytes, placed as they sit in the checksum's 16-bit words. */
	__u32 pad_word = 0;
	__u32 payload = p->l4 + sizeof(struct udphdr);
	if (pad) {
		__u8 b[4] = {};
		__u8 raw[3] = {};
		if (pad == 1 && bpf_skb_load_bytes(skb, payload + CHANNEL_HDR + dlen, raw, 1))
			return TC_ACT_OK;
		if (pad == 2 && bpf_skb_load_bytes(skb, payload + CHANNEL_HDR + dlen, raw, 2))
			return TC_ACT_OK;
		if (pad == 3 && bpf_skb_load_bytes(skb, payload + CHANNEL_HDR + dlen, raw, 3))
			return TC_ACT_OK;
		if (dlen & 1) {
			b[1] = raw[0];
			b[2] = raw[1];
			b[3] = raw[2];
		} else {
			b[0] = raw[0];
			b[1] = raw[1];
			b[2] = raw[2];
		}
		__builtin_memcpy(&pad_word, b, 4);
	}
	if (fix_udp_csum(skb, p, r, new_ulen, header, pad_word, 0))
		goto failed;
	if (move_payload(skb, payload + CHANNEL_HDR, payload, dlen))
		goto failed;
	if (write_ports(skb, p, r, new_ulen) || write_ip(skb, p, r, new_ulen))
		goto failed;
	if (bpf_skb_change_tail(skb, p->end - shrink, 0))
		goto failed;
	count_route(r, dlen);
	count_total(TOTAL_TO_PEER, dlen);
	return bpf_redirect_neigh(r->ifindex, 0, 0, 0);
failed:
	count_total(TOTAL_FAILED, dlen);
	return TC_ACT_SHOT;
}

SEC("classifier")
int ferroturn_ingress(struct __sk_buff *skb)
{
	struct pkt p = {};
	/* GSO super-packets carry many datagrams: the stack splits them for user space. */
	if (skb->gso_size || parse(skb, &p))
		return TC_ACT_OK;
	__u64 now = bpf_ktime_get_ns();
	__u32 plen = p.ulen - sizeof(struct udphdr);
	if (plen >= CHANNEL_HDR) {
		__u32 header = 0;
		if (bpf_skb_load_bytes(skb, p.l4 + sizeof(struct udphdr), &header, 4))
			return TC_ACT_OK;
		__u8 first = header & 0xff;
		if (first >= 0x40 && first <= 0x7f) {
			__u16 channel = bpf_ntohs((__u16)(header & 0xffff));
			__u16 dlen = bpf_ntohs((__u16)(header >> 16));
			struct ft_c2p_key k = {};
			k.client = p.saddr;
			k.listener = p.daddr;
			k.client_port = p.sport;
			k.listener_port = p.dport;
			k.channel = channel;
			k.family = p.family;
			struct ft_route *r = bpf_map_lookup_elem(&FT_C2P, &k);
			if (r) {
				/* Over UDP the padding to a multiple of four is optional. */
				__u32 need = CHANNEL_HDR + (__u32)dlen;
				__u32 padded = (need + 3) & ~3u;
				if (!live(r, now) || (plen != need && plen != padded))
					return TC_ACT_OK;
				return to_peer(skb, &p, r, header, dlen, plen - need, now);
			}
		}
	}
	struct ft_p2c_key pk = {};
	pk.peer = p.saddr;
	pk.relay = p.daddr;
	pk.peer_port = p.sport;
	pk.relay_port = p.dport;
	pk.family = p.family;
	struct ft_route *r = bpf_map_lookup_elem(&FT_P2C, &pk);
	if (r && live(r, now))
		return to_client(skb, &p, r);
	return TC_ACT_OK;
}

/* GPL-compatible, as some helpers require; the file is Apache-2.0 OR GPL-2.0. */
char _license[] SEC("license") = "GPL";

//! Which network interfaces carry the relay's addresses: the program is attached to those.

use std::net::IpAddr;

use crate::runtime::addresses::list_interface_addresses;

/// Names of the non-loopback interfaces that hold one of `ips`, without duplicates, in the
/// order found. Loopback is left out: a client on this host gains nothing from the program,
/// and every local connection would pay for it.
pub(super) fn carrying(ips: &[IpAddr]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in list_interface_addresses() {
        if !a.loopback && ips.contains(&a.ip) && !out.contains(&a.name) {
            out.push(a.name);
        }
    }
    out
}

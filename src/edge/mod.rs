//! What both HTTP edges (the API in `http/` and the staff console in `console/`) share, so that
//! neither imports the other: the client's address behind trusted proxies, the status of a
//! service's error, and downloads.

pub mod downloads;
mod status;

pub use status::status_of;

use std::net::IpAddr;

/// The client's address behind `trusted_proxies` proxies that each append the address they saw to
/// `X-Forwarded-For`. Every header line counts, read as one list in order; the client is the
/// entry the outermost trusted proxy added (the `trusted_proxies`-th from the right), since
/// anything left of it came from the client and can be anything. With no trusted proxies, or a
/// list too short or unreadable there, it is the peer.
pub fn client_address<'a>(
    peer: Option<IpAddr>,
    forwarded_lines: impl Iterator<Item = &'a [u8]>,
    trusted_proxies: usize,
) -> Option<IpAddr> {
    if trusted_proxies == 0 {
        return peer;
    }
    let entries: Vec<String> = forwarded_lines
        .flat_map(|line| {
            String::from_utf8_lossy(line)
                .split(',')
                .map(|entry| entry.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    entries
        .len()
        .checked_sub(trusted_proxies)
        .and_then(|at| entries[at].parse().ok())
        .or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn every_forwarded_line_counts_and_the_client_is_what_the_outermost_proxy_saw() {
        let peer = Some(ip("10.0.0.2"));
        let lines = |l: &[&'static str]| l.iter().map(|s| s.as_bytes()).collect::<Vec<_>>();
        // One proxy: the last entry it added is the client, whatever the client wrote before.
        let one = lines(&["1.1.1.1, 203.0.113.7"]);
        assert_eq!(
            client_address(peer, one.into_iter(), 1),
            Some(ip("203.0.113.7"))
        );
        // A second header line is part of the same list, not ignored (nor a spoof that wins).
        let two = lines(&["6.6.6.6", "203.0.113.7"]);
        assert_eq!(
            client_address(peer, two.into_iter(), 1),
            Some(ip("203.0.113.7"))
        );
        let spoof_first = lines(&["203.0.113.7", "6.6.6.6"]);
        assert_eq!(
            client_address(peer, spoof_first.into_iter(), 1),
            Some(ip("6.6.6.6"))
        );
        // Two proxies: the second from the right.
        let chain = lines(&["9.9.9.9, 203.0.113.7", "10.0.0.1"]);
        assert_eq!(
            client_address(peer, chain.into_iter(), 2),
            Some(ip("203.0.113.7"))
        );
        // Not trusted, too short or unreadable: the peer.
        assert_eq!(
            client_address(peer, lines(&["203.0.113.7"]).into_iter(), 0),
            peer
        );
        assert_eq!(
            client_address(peer, lines(&["203.0.113.7"]).into_iter(), 2),
            peer
        );
        assert_eq!(
            client_address(peer, lines(&["nonsense"]).into_iter(), 1),
            peer
        );
        assert_eq!(client_address(peer, std::iter::empty(), 1), peer);
    }
}

//! What a lab network is made of: its hosts (each a TCP/IP stack), its routers, and the cables
//! between them, in the order the lab declares them, which is the order of the ladder's
//! lifelines. Host 0 is the client, host 1 the server. Addresses stay in the documentation
//! ranges (RFC 5737), which never leave the process.

use super::router::{Filter, Nat, Route};
use std::net::Ipv4Addr;

/// A host: a name as the steps say it, its part in the story, an address (none for a host that asks DHCP for one), and
/// where it sends what is not on its link.
#[derive(Debug, Clone)]
pub struct HostSpec {
    pub name: &'static str,
    /// What the host is in the lab's story, in the course's words (`MUA`, `MSA, MTA`), shown
    /// beside its name where there is room.
    pub role: Option<&'static str>,
    pub ip: Option<Ipv4Addr>,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
}

/// A router: its interfaces' addresses (interface `i` is the `i`th), its routes beyond its own
/// links, and whether it keeps quiet instead of sending ICMP errors.
#[derive(Debug, Clone)]
pub struct RouterSpec {
    pub name: &'static str,
    pub ports: Vec<(Ipv4Addr, u8)>,
    pub routes: Vec<Route>,
    pub silent: bool,
    /// Address translation between its inside and its outside interface, if it does it.
    pub nat: Option<Nat>,
    /// The firewall on what it forwards, if it has one.
    pub filter: Option<Filter>,
}

/// One end of a cable: a host's card, or a router's interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Host(usize),
    Router(usize, usize),
}

/// How two nodes are joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// A cable of their own.
    Cable,
    /// The same switched LAN.
    Lan,
    /// Not directly.
    None,
}

/// A lifeline as drawn in one line (see [`Topology::drawn`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drawn {
    pub name: &'static str,
    /// How it is joined to the one before it.
    pub before: Link,
    /// A switched LAN starts with it, or ends with it.
    pub opens: bool,
    pub closes: bool,
}

/// A lab network. A cable joins two ends; one with more is a switched segment (a LAN): a
/// switch that has learnt every port's MAC sends a frame only to the end it is addressed to,
/// and a broadcast to every other end, each copy a step of its own.
#[derive(Debug, Clone)]
pub struct Topology {
    pub hosts: Vec<HostSpec>,
    pub routers: Vec<RouterSpec>,
    pub cables: Vec<Vec<End>>,
}

impl Topology {
    /// Two hosts on one cable: the client at 192.0.2.1 and the server at 192.0.2.2, named
    /// `client` and `server` (most labs).
    pub fn pair() -> Topology {
        let host = |name, last| HostSpec {
            role: None,
            name,
            ip: Some(Ipv4Addr::new(192, 0, 2, last)),
            prefix: 24,
            gateway: None,
        };
        Topology {
            hosts: vec![host("client", 1), host("server", 2)],
            routers: Vec::new(),
            cables: vec![vec![End::Host(0), End::Host(1)]],
        }
    }

    /// Two hosts on one cable, the client without an address: it asks the server's DHCP for one.
    pub fn dhcp() -> Topology {
        let mut t = Topology::pair();
        t.hosts[0].ip = None;
        t
    }

    /// The client on 192.0.2.0/24, the server on 203.0.113.0/24, and the routers `r1`, `r2`, …
    /// in a chain between them, joined by 198.51.100.0/24 cut into /30 links.
    pub fn chain(routers: usize) -> Topology {
        assert!((1..=60).contains(&routers), "a chain has 1 to 60 routers");
        let link = |i: usize, host: u8| Ipv4Addr::new(198, 51, 100, (i * 4) as u8 + host);
        let client = HostSpec {
            role: None,
            name: "client",
            ip: Some(Ipv4Addr::new(192, 0, 2, 1)),
            prefix: 24,
            gateway: Some(Ipv4Addr::new(192, 0, 2, 254)),
        };
        let server = HostSpec {
            role: None,
            name: "server",
            ip: Some(Ipv4Addr::new(203, 0, 113, 5)),
            prefix: 24,
            gateway: Some(Ipv4Addr::new(203, 0, 113, 254)),
        };
        let names = ["r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"];
        let mut specs = Vec::new();
        for r in 0..routers {
            // Interface 0 faces the client, interface 1 the server.
            let inside = if r == 0 { (Ipv4Addr::new(192, 0, 2, 254), 24) } else { (link(r - 1, 2), 30) };
            let outside = if r + 1 == routers { (Ipv4Addr::new(203, 0, 113, 254), 24) } else { (link(r, 1), 30) };
            let mut routes = Vec::new();
            if r > 0 {
                routes.push(Route { net: Ipv4Addr::new(192, 0, 2, 0), prefix: 24, via: Some(link(r - 1, 1)), port: 0 });
            }
            if r + 1 < routers {
                routes.push(Route { net: Ipv4Addr::new(203, 0, 113, 0), prefix: 24, via: Some(link(r, 2)), port: 1 });
            }
            specs.push(RouterSpec {
                name: names.get(r).copied().unwrap_or("r"),
                ports: vec![inside, outside],
                routes,
                silent: false,
                nat: None,
                filter: None,
            });
        }
        let mut cables = vec![vec![End::Host(0), End::Router(0, 0)]];
        cables.extend((1..routers).map(|r| vec![End::Router(r - 1, 1), End::Router(r, 0)]));
        cables.push(vec![End::Router(routers - 1, 1), End::Host(1)]);
        Topology { hosts: vec![client, server], routers: specs, cables }
    }

    /// The names of the hosts, then of the routers: one per node, by node index.
    pub fn names(&self) -> Vec<&'static str> {
        self.hosts.iter().map(|h| h.name).chain(self.routers.iter().map(|r| r.name)).collect()
    }

    /// The ladder's lifelines, left to right: the client and the hosts on its own LAN, the
    /// routers in order, the other hosts (the server first).
    pub fn lifelines(&self) -> Vec<&'static str> {
        let near: Vec<End> = self.peers(End::Host(0));
        let (local, far): (Vec<usize>, Vec<usize>) = (1..self.hosts.len()).partition(|&h| near.contains(&End::Host(h)));
        let hosts = |list: Vec<usize>| list.into_iter().map(|h| self.hosts[h].name).collect::<Vec<_>>();
        let mut lines = vec![self.hosts[0].name];
        lines.extend(hosts(local));
        lines.extend(self.routers.iter().map(|r| r.name));
        lines.extend(hosts(far));
        lines
    }

    /// The node an end is on: hosts first, then routers.
    pub fn node(&self, end: End) -> usize {
        match end {
            End::Host(h) => h,
            End::Router(r, _) => self.hosts.len() + r,
        }
    }

    /// One LAN of hosts on a switch (no router): `names[i]` at 192.0.2.`last[i]`/24; the
    /// first is the client, the second the server.
    pub fn lan(hosts: &[(&'static str, u8)]) -> Topology {
        let hosts: Vec<HostSpec> = hosts
            .iter()
            .map(|&(name, last)| HostSpec {
                role: None,
                name,
                ip: Some(Ipv4Addr::new(192, 0, 2, last)),
                prefix: 24,
                gateway: None,
            })
            .collect();
        let ends = (0..hosts.len()).map(End::Host).collect();
        Topology { hosts, routers: Vec::new(), cables: vec![ends] }
    }

    /// How the nodes named `a` and `b` are joined: a cable of their own, a switched LAN, or not
    /// directly.
    pub fn link(&self, a: &str, b: &str) -> Link {
        let names = self.names();
        let (Some(a), Some(b)) = (names.iter().position(|n| *n == a), names.iter().position(|n| *n == b)) else {
            return Link::None;
        };
        let on = |cable: &&Vec<End>, node: usize| cable.iter().any(|&e| self.node(e) == node);
        match self.cables.iter().find(|c| on(c, a) && on(c, b)) {
            Some(cable) if cable.len() > 2 => Link::Lan,
            Some(_) => Link::Cable,
            None => Link::None,
        }
    }

    /// The lifelines as the map and `protolab labs` draw them: each with the link to the one
    /// before it, and whether a switched LAN opens before it or closes after it.
    pub fn drawn(&self) -> Vec<Drawn> {
        let nodes = self.lifelines();
        let links: Vec<Link> = (1..nodes.len()).map(|i| self.link(nodes[i - 1], nodes[i])).collect();
        nodes
            .iter()
            .enumerate()
            .map(|(i, &name)| {
                let before = if i == 0 { Link::None } else { links[i - 1] };
                let after = links.get(i).copied().unwrap_or(Link::None);
                Drawn {
                    name,
                    before,
                    opens: after == Link::Lan && before != Link::Lan,
                    closes: before == Link::Lan && after != Link::Lan,
                }
            })
            .collect()
    }

    /// The other ends of the cable or segment plugged into `end` (none for a card with no
    /// cable).
    pub fn peers(&self, end: End) -> Vec<End> {
        let cable = self.cables.iter().find(|c| c.contains(&end));
        cable.map(|c| c.iter().copied().filter(|&e| e != end).collect()).unwrap_or_default()
    }

    /// The other end of the cable plugged into `end`, if it is a cable of two.
    pub fn peer(&self, end: End) -> Option<End> {
        match self.peers(end)[..] {
            [one] => Some(one),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_joins_client_and_server_through_each_router() {
        let t = Topology::chain(3);
        assert_eq!(t.names(), ["client", "server", "r1", "r2", "r3"]);
        assert_eq!(t.lifelines(), ["client", "r1", "r2", "r3", "server"]);
        assert_eq!(t.peer(End::Host(0)), Some(End::Router(0, 0)));
        assert_eq!(t.peer(End::Router(0, 1)), Some(End::Router(1, 0)));
        assert_eq!(t.peer(End::Router(2, 1)), Some(End::Host(1)));
        assert_eq!(t.node(End::Router(1, 0)), 3);
        // r2 sits between two /30 links, and knows both ends' networks.
        assert_eq!(t.routers[1].ports, [(Ipv4Addr::new(198, 51, 100, 2), 30), (Ipv4Addr::new(198, 51, 100, 5), 30)]);
        assert_eq!(t.routers[1].routes.len(), 2);
        assert_eq!(Topology::pair().peer(End::Host(1)), Some(End::Host(0)));
        let lan = Topology::lan(&[("client", 1), ("a", 10), ("b", 20)]);
        assert_eq!(lan.peers(End::Host(1)), [End::Host(0), End::Host(2)]);
        assert_eq!(lan.peer(End::Host(1)), None);
        assert_eq!(lan.lifelines(), ["client", "a", "b"]);
        assert_eq!(
            (lan.link("a", "b"), t.link("client", "r1"), t.link("client", "r2")),
            (Link::Lan, Link::Cable, Link::None)
        );
        // A LAN behind a cable: the LAN opens with r1, the router on it.
        let mut nat = lan.clone();
        nat.hosts.insert(0, HostSpec { role: None, name: "remote", ip: None, prefix: 24, gateway: None });
        nat.cables = vec![
            vec![End::Host(0), End::Router(0, 1)],
            vec![End::Router(0, 0), End::Host(1), End::Host(2), End::Host(3)],
        ];
        nat.routers = t.routers[..1].to_vec();
        let drawn = nat.drawn();
        let names: Vec<_> = drawn.iter().map(|d| (d.name, d.before, d.opens, d.closes)).collect();
        assert_eq!(
            names,
            [
                ("remote", Link::None, false, false),
                ("r1", Link::Cable, true, false),
                ("client", Link::Lan, false, false),
                ("a", Link::Lan, false, false),
                ("b", Link::Lan, false, true),
            ]
        );
    }
}

//! The lab network in one line under the ladder: its hosts (with their addresses), routers and
//! links (a switched LAN among them in brackets), or the hosts of a switched LAN, with the link the selected step crossed — and the two
//! nodes at its ends — highlighted. Shortened to fit: last octets only, then names only.

use crate::locale::{Lang, endpoint, tr};
use crate::net::sim::{Link, Topology};
use crate::tui::text::{fit, width};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};
use std::net::Ipv4Addr;

/// Rows the map takes.
pub const ROWS: u16 = 1;

/// Whether a lab network is worth a map: more than the two hosts of one cable.
pub fn worth_it(topology: &Topology) -> bool {
    topology.names().len() > 2
}

pub struct Map<'a> {
    pub topology: &'a Topology,
    /// The selected step's sender and receiver.
    pub crossed: Option<(&'a str, &'a str)>,
    pub lang: Lang,
}

/// How much of a host's address to show.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Address {
    Whole,
    LastOctet,
    None,
}

impl Map<'_> {
    /// One node: its name, and its address (a router's, one per link: `r1 .254/.1`).
    fn node(&self, name: &str, (for_hosts, for_routers): (Address, Address), roles: bool) -> String {
        let host = self.topology.hosts.iter().find(|h| h.name == name).and_then(|h| h.ip);
        let router = self.topology.routers.iter().find(|r| r.name == name);
        let ips: Vec<Ipv4Addr> = match (host, router) {
            (Some(ip), _) => vec![ip],
            (None, Some(r)) => r.ports.iter().map(|(ip, _)| *ip).collect(),
            _ => Vec::new(),
        };
        let mut shown = endpoint(self.lang, name);
        // The host's part in the story (`MUA`), where there is room.
        let role = self.topology.hosts.iter().find(|h| h.name == name).and_then(|h| h.role);
        if let Some(role) = role.filter(|_| roles) {
            shown = format!("{shown} ({role})");
        }
        let said: Vec<String> = match if host.is_some() { for_hosts } else { for_routers } {
            Address::Whole => ips.iter().map(Ipv4Addr::to_string).collect(),
            Address::LastOctet => ips.iter().map(|ip| format!(".{}", ip.octets()[3])).collect(),
            Address::None => Vec::new(),
        };
        if said.is_empty() { shown } else { format!("{shown} {}", said.join("/")) }
    }

    fn is_end(&self, name: &str) -> bool {
        self.crossed.is_some_and(|(a, b)| a == name || b == name)
    }

    /// The map as spans, in one of its lengths: with the hosts' roles or without.
    fn spans(&self, address: (Address, Address), roles: bool) -> Vec<Span<'static>> {
        let lit = Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED);
        let end = Style::new().add_modifier(Modifier::BOLD);
        let nodes = self.topology.lifelines();
        let node = |name: &str| {
            let style = if self.is_end(name) { end } else { Style::new() };
            Span::styled(self.node(name, address, roles), style)
        };
        let lan = self.topology.routers.is_empty() && self.topology.cables.iter().any(|c| c.len() > 2);
        let mut spans = Vec::new();
        if lan {
            // One segment: every host on it, the two the step went between in bold.
            let first = self.topology.hosts.iter().find_map(|h| Some((h.ip?, h.prefix)));
            let net = first.map(|(ip, prefix)| {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                format!("{}/{prefix}", Ipv4Addr::from(u32::from(ip) & mask))
            });
            let head = match net {
                Some(net) => format!("{} {net}: ", tr(self.lang, "switched LAN")),
                None => format!("{}: ", tr(self.lang, "switched LAN")),
            };
            spans.push(Span::styled(head, Style::new().add_modifier(Modifier::DIM)));
            for (i, name) in nodes.iter().enumerate() {
                if i > 0 {
                    spans.push(Span::raw(" · "));
                }
                spans.push(node(name));
            }
            return spans;
        }
        // A switched LAN among cables is bracketed, its hosts apart by ` · `.
        for (i, d) in self.topology.drawn().iter().enumerate() {
            let crossed = i > 0
                && self
                    .crossed
                    .is_some_and(|(a, b)| (a == nodes[i - 1] && b == d.name) || (b == nodes[i - 1] && a == d.name));
            match d.before {
                Link::Cable if crossed => spans.push(Span::styled(" ━━ ", lit)),
                Link::Cable => spans.push(Span::raw(" ── ")),
                Link::Lan => spans.push(Span::raw(" · ")),
                Link::None if i > 0 => spans.push(Span::raw(" ┄ ")),
                Link::None => {}
            }
            if d.opens {
                spans.push(Span::raw("["));
            }
            spans.push(node(d.name));
            if d.closes {
                spans.push(Span::raw("]"));
            }
        }
        spans
    }
}

impl Widget for Map<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let room = area.width as usize;
        // Hosts' addresses and routers' (one per link), shortened routers first; the hosts'
        // roles go last, after every address.
        use Address::{LastOctet, None as Nothing, Whole};
        let addresses = [
            (Whole, Whole),
            (Whole, LastOctet),
            (Whole, Nothing),
            (LastOctet, LastOctet),
            (LastOctet, Nothing),
            (Nothing, Nothing),
        ];
        let spans = [true, false]
            .into_iter()
            .flat_map(|roles| addresses.into_iter().map(move |a| (a, roles)))
            .map(|(a, roles)| self.spans(a, roles))
            .find(|s| s.iter().map(|span| width(&span.content)).sum::<usize>() <= room);
        let spans = spans.unwrap_or_else(|| {
            // Still too wide: cut at the edge, as one plain line.
            let text: String =
                self.spans((Address::None, Address::None), false).iter().map(|s| s.content.to_string()).collect();
            vec![Span::raw(fit(&text, room))]
        });
        Paragraph::new(Line::from(spans)).render(area, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(topology: &Topology, crossed: Option<(&str, &str)>, w: u16) -> Buffer {
        let mut buf = Buffer::empty(Rect::new(0, 0, w, 1));
        Map { topology, crossed, lang: Lang::En }.render(buf.area, &mut buf);
        buf
    }

    fn text(buf: &Buffer) -> String {
        buf.content.iter().map(|c| c.symbol()).collect::<String>().trim_end().to_string()
    }

    #[test]
    fn the_crossed_link_of_a_chain_is_lit() {
        let t = Topology::chain(2);
        let buf = render(&t, Some(("r2", "r1")), 120);
        assert_eq!(
            text(&buf),
            "client 192.0.2.1 ── r1 192.0.2.254/198.51.100.1 ━━ r2 198.51.100.2/203.0.113.254 ── server 203.0.113.5"
        );
        let lit = text(&buf).chars().position(|c| c == '━').unwrap();
        assert!(buf.content[lit].modifier.contains(Modifier::REVERSED));
        assert!(!buf.content[0].modifier.contains(Modifier::BOLD), "client is not an end");
        // Narrower: last octets, then names only.
        assert_eq!(text(&render(&t, None, 90)), "client 192.0.2.1 ── r1 .254/.1 ── r2 .2/.254 ── server 203.0.113.5");
        assert_eq!(text(&render(&t, None, 60)), "client 192.0.2.1 ── r1 ── r2 ── server 203.0.113.5");
        assert_eq!(text(&render(&t, None, 40)), "client .1 ── r1 ── r2 ── server .5");
        assert_eq!(text(&render(&t, None, 30)), "client ── r1 ── r2 ── server");
        assert_eq!(text(&render(&t, None, 12)), "client ── r…");
    }

    #[test]
    fn a_lan_names_its_network_and_marks_both_ends() {
        let t = Topology::lan(&[("client", 1), ("a", 10), ("b", 20)]);
        let buf = render(&t, Some(("b", "client")), 80);
        assert_eq!(text(&buf), "switched LAN 192.0.2.0/24: client 192.0.2.1 · a 192.0.2.10 · b 192.0.2.20");
        let line = text(&buf);
        let at = line[..line.find("b 192").unwrap()].chars().count();
        assert!(buf.content[at].modifier.contains(Modifier::BOLD));
        assert!(!worth_it(&Topology::pair()));
    }
}

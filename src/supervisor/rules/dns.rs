//! The embedded DNS server's message handling (Docker serves it at 127.0.0.11 in every
//! container on a user-defined network): one query in, what to do about it out. Pure; the
//! sockets opened inside each container's network namespace, and the forwarding to the host's
//! resolvers, belong to the caller.
//!
//! What it answers, as Docker 20.10's resolver (libnetwork `resolver.go`, and
//! 3f-user-networks.txt): A and AAAA for the names the caller's lookup knows (container names,
//! aliases, `NAME.NETWORK`, hostnames), compared case-insensitively and without the trailing
//! dot, with TTL 600, recursion available and not authoritative (nslookup's "Non-authoritative
//! answer"); a known name without an address of the asked family gets an empty NOERROR answer
//! (the second, empty "Non-authoritative answer" of the transcript's `nslookup c2`). Any other
//! name or query type is for the host's resolvers ([`Response::Forward`]).
//!
//! One choice differs from Docker, as the issue asks: an unknown single-label name gets
//! NXDOMAIN here ([`answer`]), where Docker forwards it too (the transcript's `nslookup
//! nosuchname` times out because the host's resolver is unreachable). [`answer_with`] with
//! [`SingleLabel::Forward`] does what Docker does.
//!
//! Malformed input never panics: a message too short for a header, or one that is itself a
//! response, is dropped; a query that does not decode, or has no or several questions, gets
//! FORMERR; an opcode other than QUERY gets NOTIMP.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};

/// The TTL of every answer, Docker's `respTTL`.
pub const TTL: u32 = 600;
/// The largest UDP answer without EDNS (RFC 1035).
const UDP_PLAIN_MAX: usize = 512;
/// The UDP payload size announced to EDNS clients (the DNS flag day's safe size).
const UDP_EDNS_MAX: u16 = 1232;

/// What to do with one incoming message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// Send these bytes back to the client.
    Reply(Vec<u8>),
    /// Send the query as it came to the host's resolvers and relay their answer (or, if none
    /// answers, [`servfail`] for it).
    Forward,
    /// Send nothing.
    Drop,
}

/// What an unknown name of one label gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SingleLabel {
    /// NXDOMAIN, at once (the rule; the name never leaves the host).
    #[default]
    NxDomain,
    /// Forwarded to the host's resolvers, as Docker does.
    Forward,
}

/// Answers `query` (one UDP datagram's payload) from `lookup`, which is given a name
/// lower-cased and without its trailing dot and returns the addresses it has for the asking
/// container, or `None` if the name is not one of its peers'. Unknown single-label names get
/// NXDOMAIN.
pub fn answer(query: &[u8], lookup: impl Fn(&str) -> Option<Vec<IpAddr>>) -> Response {
    answer_with(query, lookup, SingleLabel::NxDomain)
}

/// How a message travels, which bounds the size of its answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// A datagram: 512 bytes, or the client's EDNS size up to 1232; a bigger answer loses
    /// records and has TC set, so that the client asks again over TCP.
    #[default]
    Udp,
    /// A length-prefixed TCP message: up to 65535 bytes, never TC (Docker's `truncateResp`).
    Tcp,
}

/// [`answer`], with the treatment of unknown single-label names chosen.
pub fn answer_with(
    query: &[u8],
    lookup: impl Fn(&str) -> Option<Vec<IpAddr>>,
    single_label: SingleLabel,
) -> Response {
    answer_over(query, lookup, single_label, Transport::Udp)
}

/// [`answer_with`], for a query that came over `transport`.
pub fn answer_over(
    query: &[u8],
    lookup: impl Fn(&str) -> Option<Vec<IpAddr>>,
    single_label: SingleLabel,
    transport: Transport,
) -> Response {
    let Some(header) = RawHeader::read(query) else {
        return Response::Drop;
    };
    // Never answer an answer: that is how two resolvers end up in a loop.
    if header.is_response() {
        return Response::Drop;
    }
    if header.opcode() != 0 {
        return Response::Reply(header.error(ResponseCode::NotImp));
    }
    let Ok(request) = Message::from_vec(query) else {
        return Response::Reply(header.error(ResponseCode::FormErr));
    };
    let [question] = request.queries.as_slice() else {
        return Response::Reply(header.error(ResponseCode::FormErr));
    };
    let family = match question.query_type() {
        RecordType::A => Family::V4,
        RecordType::AAAA => Family::V6,
        _ => return Response::Forward,
    };
    if question.query_class() != DNSClass::IN {
        return Response::Forward;
    }
    let name = lookup_key(&question.name().to_ascii());
    let mut reply = reply_to(&request);
    match lookup(&name) {
        Some(addresses) => {
            for ip in addresses {
                let rdata = match (family, ip) {
                    (Family::V4, IpAddr::V4(v4)) => RData::A(A(v4)),
                    (Family::V6, IpAddr::V6(v6)) => RData::AAAA(AAAA(v6)),
                    _ => continue,
                };
                reply.add_answer(Record::from_rdata(question.name().clone(), TTL, rdata));
            }
        }
        None if question.name().num_labels() == 1 && single_label == SingleLabel::NxDomain => {
            reply.metadata.response_code = ResponseCode::NXDomain;
        }
        None => return Response::Forward,
    }
    encode(reply, &request, &header, transport)
}

/// The SERVFAIL a client gets when its query was to be forwarded and no resolver answered
/// (Docker lets it time out instead); `None` where [`answer`] would drop the message.
pub fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    let header = RawHeader::read(query).filter(|h| !h.is_response())?;
    match Message::from_vec(query) {
        Ok(request) => {
            let mut reply = reply_to(&request);
            reply.metadata.response_code = ResponseCode::ServFail;
            match encode(reply, &request, &header, Transport::Tcp) {
                Response::Reply(bytes) => Some(bytes),
                _ => Some(header.error(ResponseCode::ServFail)),
            }
        }
        Err(_) => Some(header.error(ResponseCode::FormErr)),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

/// A name as the lookup is given it: lower-case, no trailing dot.
fn lookup_key(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// The answer's frame: the query's ID, opcode, RD and question; RA set, AA not, as Docker's
/// `createRespMsg`.
fn reply_to(request: &Message) -> Message {
    let mut reply = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.checking_disabled = request.metadata.checking_disabled;
    reply.queries = request.queries.clone();
    if request.edns.is_some() {
        // RFC 6891: a query with an OPT record gets one back.
        let mut edns = Edns::new();
        edns.set_max_payload(UDP_EDNS_MAX);
        reply.edns = Some(edns);
    }
    reply
}

/// Encodes `reply`, dropping answers (and, over UDP, setting TC) until it fits the client's
/// size.
fn encode(
    mut reply: Message,
    request: &Message,
    header: &RawHeader,
    transport: Transport,
) -> Response {
    let limit = match (transport, &request.edns) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, Some(edns)) => usize::from(edns.max_payload().clamp(512, UDP_EDNS_MAX)),
        (Transport::Udp, None) => UDP_PLAIN_MAX,
    };
    loop {
        let Ok(bytes) = reply.to_vec() else {
            return Response::Reply(header.error(ResponseCode::ServFail));
        };
        if bytes.len() <= limit || reply.answers.is_empty() {
            return Response::Reply(bytes);
        }
        reply.answers.pop();
        reply.metadata.truncation = transport == Transport::Udp;
    }
}

/// The first 12 bytes of a message, enough to answer it with an error when the rest does not
/// decode.
struct RawHeader {
    id: u16,
    flags: u16,
}

impl RawHeader {
    fn read(bytes: &[u8]) -> Option<RawHeader> {
        let [a, b, c, d, ..] = bytes else { return None };
        if bytes.len() < 12 {
            return None;
        }
        Some(RawHeader { id: u16::from_be_bytes([*a, *b]), flags: u16::from_be_bytes([*c, *d]) })
    }

    fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    fn opcode(&self) -> u16 {
        (self.flags >> 11) & 0xf
    }

    /// A header-only answer: QR set, the query's opcode and RD, RA set, `code`, no sections.
    fn error(&self, code: ResponseCode) -> Vec<u8> {
        let rd = self.flags & 0x0100;
        let flags = 0x8000 | (self.flags & 0x7800) | rd | 0x0080 | (u16::from(code.low()) & 0xf);
        let mut out = Vec::with_capacity(12);
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&[0; 8]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// The 3f-user-networks.txt network as c1 sees it: c2 (alias c2alias, hostname
    /// cfc5995ff690) at 172.18.0.3, reachable as c2.my-bridge too; c1 itself at 172.18.0.2.
    fn my_bridge(name: &str) -> Option<Vec<IpAddr>> {
        let c2 = IpAddr::V4(Ipv4Addr::new(172, 18, 0, 3));
        match name {
            "c2" | "c2alias" | "c2.my-bridge" | "cfc5995ff690" => Some(vec![c2]),
            "c1" => Some(vec![IpAddr::V4(Ipv4Addr::new(172, 18, 0, 2))]),
            "dual" => Some(vec![c2, IpAddr::V6("fd00::3".parse().unwrap())]),
            "many" => Some((1..=60).map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))).collect()),
            _ => None,
        }
    }

    fn query(name: &str, rtype: RecordType) -> Message {
        let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
        m
    }

    fn ask(message: &Message) -> Response {
        answer(&message.to_vec().unwrap(), my_bridge)
    }

    fn reply(response: Response) -> Message {
        match response {
            Response::Reply(bytes) => Message::from_vec(&bytes).unwrap(),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn addresses(m: &Message) -> Vec<String> {
        m.answers.iter().map(|r| r.data.to_string()).collect()
    }

    #[test]
    fn a_known_name_gets_its_address_as_docker_answers() {
        let m = reply(ask(&query("c2.", RecordType::A)));
        assert_eq!(m.metadata.id, 0x1234);
        assert_eq!(m.metadata.message_type, MessageType::Response);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.recursion_desired && m.metadata.recursion_available);
        assert!(!m.metadata.authoritative, "nslookup says Non-authoritative answer");
        assert_eq!(m.queries, query("c2.", RecordType::A).queries);
        assert_eq!(addresses(&m), ["172.18.0.3"]);
        assert_eq!(m.answers[0].ttl, TTL);
        assert_eq!(m.answers[0].name.to_ascii(), "c2.");
    }

    #[test]
    fn names_match_without_case_or_trailing_dot() {
        for name in ["C2", "c2.", "C2Alias.", "c2.MY-BRIDGE", "cfc5995ff690"] {
            assert_eq!(
                addresses(&reply(ask(&query(name, RecordType::A)))),
                ["172.18.0.3"],
                "{name}"
            );
        }
        // The answer carries the name as it was asked.
        let m = reply(ask(&query("C2Alias.", RecordType::A)));
        assert_eq!(m.answers[0].name.to_ascii(), "C2Alias.");
    }

    #[test]
    fn a_known_name_without_an_ipv6_address_gets_an_empty_answer() {
        let m = reply(ask(&query("c2", RecordType::AAAA)));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(m.answers, []);
    }

    #[test]
    fn each_family_gets_its_own_addresses() {
        assert_eq!(addresses(&reply(ask(&query("dual", RecordType::A)))), ["172.18.0.3"]);
        assert_eq!(addresses(&reply(ask(&query("dual", RecordType::AAAA)))), ["fd00::3"]);
    }

    #[test]
    fn an_unknown_single_label_name_is_nxdomain() {
        let m = reply(ask(&query("nosuchname.", RecordType::A)));
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(m.answers, []);
        assert!(!m.metadata.authoritative);
        let q = query("c3", RecordType::AAAA).to_vec().unwrap();
        assert_eq!(answer_with(&q, my_bridge, SingleLabel::Forward), Response::Forward);
    }

    #[test]
    fn other_names_and_types_are_forwarded() {
        assert_eq!(ask(&query("example.com.", RecordType::A)), Response::Forward);
        assert_eq!(ask(&query("c2", RecordType::MX)), Response::Forward);
        assert_eq!(ask(&query("c2", RecordType::TXT)), Response::Forward);
        assert_eq!(ask(&query(".", RecordType::NS)), Response::Forward);
        let mut chaos = query("c2", RecordType::A);
        chaos.queries[0].set_query_class(DNSClass::CH);
        assert_eq!(ask(&chaos), Response::Forward);
    }

    #[test]
    fn the_lookup_sees_the_name_lowercased_without_its_dot() {
        let seen = std::cell::RefCell::new(Vec::new());
        let q = query("Web.My-Bridge.", RecordType::A).to_vec().unwrap();
        let _ = answer(&q, |name| {
            seen.borrow_mut().push(name.to_string());
            None
        });
        assert_eq!(seen.into_inner(), ["web.my-bridge"]);
    }

    #[test]
    fn an_edns_query_gets_an_opt_record_back() {
        let mut q = query("c2", RecordType::A);
        q.edns = Some(Edns::new());
        let m = reply(ask(&q));
        assert!(m.edns.is_some());
        assert!(reply(ask(&query("c2", RecordType::A))).edns.is_none());
    }

    #[test]
    fn an_answer_too_big_for_udp_is_truncated() {
        let bytes = match ask(&query("many", RecordType::A)) {
            Response::Reply(b) => b,
            other => panic!("{other:?}"),
        };
        assert!(bytes.len() <= 512);
        let m = Message::from_vec(&bytes).unwrap();
        assert!(m.metadata.truncation);
        assert!(!m.answers.is_empty() && m.answers.len() < 60);
    }

    #[test]
    fn over_tcp_an_answer_is_whole() {
        let q = query("many", RecordType::A).to_vec().unwrap();
        let m = reply(answer_over(&q, my_bridge, SingleLabel::NxDomain, Transport::Tcp));
        assert!(!m.metadata.truncation);
        assert_eq!(m.answers.len(), 60);
    }

    #[test]
    fn too_short_or_response_messages_are_dropped() {
        assert_eq!(answer(&[], my_bridge), Response::Drop);
        assert_eq!(answer(&[0x12, 0x34, 0x01], my_bridge), Response::Drop);
        let mut response = query("c2", RecordType::A);
        response.metadata.message_type = MessageType::Response;
        assert_eq!(ask(&response), Response::Drop);
        assert_eq!(servfail(&response.to_vec().unwrap()), None);
    }

    #[test]
    fn undecodable_queries_get_formerr_with_their_id() {
        let mut bytes = query("c2", RecordType::A).to_vec().unwrap();
        bytes.truncate(bytes.len() - 3);
        let m = reply(answer(&bytes, my_bridge));
        assert_eq!(m.metadata.id, 0x1234);
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
        assert!(m.metadata.recursion_desired);
        // A header claiming a question that is not there.
        let header = [0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        assert_eq!(reply(answer(&header, my_bridge)).metadata.response_code, ResponseCode::FormErr);
    }

    #[test]
    fn zero_or_two_questions_get_formerr() {
        let mut none = query("c2", RecordType::A);
        none.queries.clear();
        assert_eq!(reply(ask(&none)).metadata.response_code, ResponseCode::FormErr);
        let mut two = query("c2", RecordType::A);
        two.add_query(Query::query(Name::from_ascii("c1").unwrap(), RecordType::A));
        assert_eq!(reply(ask(&two)).metadata.response_code, ResponseCode::FormErr);
    }

    #[test]
    fn other_opcodes_get_notimp() {
        let mut status = query("c2", RecordType::A);
        status.metadata.op_code = OpCode::Status;
        let m = reply(ask(&status));
        assert_eq!(m.metadata.response_code, ResponseCode::NotImp);
        assert_eq!(m.metadata.op_code, OpCode::Status);
    }

    #[test]
    fn a_forwarded_query_that_finds_no_resolver_gets_servfail() {
        let bytes = servfail(&query("example.com", RecordType::A).to_vec().unwrap()).unwrap();
        let m = Message::from_vec(&bytes).unwrap();
        assert_eq!((m.metadata.id, m.metadata.response_code), (0x1234, ResponseCode::ServFail));
        assert_eq!(m.queries.len(), 1);
        let garbage = [0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff];
        let m = Message::from_vec(&servfail(&garbage).unwrap()).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    }

    #[test]
    fn ipv6_addresses_answer_aaaa() {
        let lookup = |_: &str| Some(vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]);
        let q = query("v6only", RecordType::AAAA).to_vec().unwrap();
        assert_eq!(addresses(&reply(answer(&q, lookup))), ["::1"]);
        let q = query("v6only", RecordType::A).to_vec().unwrap();
        assert_eq!(addresses(&reply(answer(&q, lookup))), Vec::<String>::new());
    }
}

//! Fuzzes `cproxy::supervisor::rules::dns::answer`: any datagram is handled without a panic; a reply
//! is a response that decodes, carries the query's ID and fits a UDP datagram, and a message
//! that is itself a response is never answered. Over TCP (`answer_over`), a reply is whole: no
//! TC bit, at most 65535 bytes.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cproxy::supervisor::rules::dns::{
    Response, SingleLabel, Transport, answer, answer_over, servfail,
};
use hickory_proto::op::{Message, MessageType};
use libfuzzer_sys::fuzz_target;

fn lookup(name: &str) -> Option<Vec<IpAddr>> {
    match name {
        "c1" => Some(vec![IpAddr::V4(Ipv4Addr::new(172, 18, 0, 2))]),
        "c2" | "c2alias" | "c2.my-bridge" => {
            Some(vec![IpAddr::V4(Ipv4Addr::new(172, 18, 0, 3)), IpAddr::V6(Ipv6Addr::LOCALHOST)])
        }
        "many" => Some((0..=255).map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))).collect()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let is_response = data.len() >= 12 && data[2] & 0x80 != 0;
    match answer(data, lookup) {
        Response::Reply(bytes) => {
            assert!(!is_response, "answered a response");
            assert!(bytes.len() <= 1232, "{} bytes", bytes.len());
            let reply = Message::from_vec(&bytes).expect("a reply decodes");
            assert_eq!(reply.metadata.message_type, MessageType::Response);
            assert_eq!(reply.metadata.id.to_be_bytes(), [data[0], data[1]]);
        }
        Response::Forward => assert!(!is_response && Message::from_vec(data).is_ok()),
        Response::Drop => {}
    }
    if let Response::Reply(bytes) = answer_over(data, lookup, SingleLabel::NxDomain, Transport::Tcp)
    {
        assert!(bytes.len() <= usize::from(u16::MAX));
        let reply = Message::from_vec(&bytes).expect("a TCP reply decodes");
        assert!(!reply.metadata.truncation, "TC over TCP");
    }
    if let Some(bytes) = servfail(data) {
        Message::from_vec(&bytes).expect("a servfail decodes");
    }
});

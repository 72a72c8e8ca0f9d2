//! Fuzzes the PROXY protocol header parser: it may refuse anything but never panic; an
//! incomplete header asks for more than it was given; a header it accepts lies within the
//! input, parses the same from its own bytes alone, and its addresses survive being written
//! again by cproxy's writer.

#![no_main]

use cproxy::proxy::proxy_proto::{self, Addresses, ParseError, Transport};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match proxy_proto::parse(data) {
        Ok(header) => {
            assert!(header.len <= data.len(), "header longer than the input");
            let alone = proxy_proto::parse(&data[..header.len]);
            assert_eq!(alone.as_ref(), Ok(&header), "the header's own bytes parse differently");
            let _ = header.tlvs.count();
            if let Addresses::Inet { transport: Transport::Stream, source, destination } =
                header.addresses
            {
                let again = proxy_proto::encode(header.version, Some((source, destination)));
                let reparsed = proxy_proto::parse(again.as_bytes());
                let canon = |a: std::net::SocketAddr| (a.ip().to_canonical(), a.port());
                match reparsed.map(|h| h.addresses) {
                    Ok(Addresses::Inet { source: s, destination: d, .. }) => {
                        assert_eq!((canon(s), canon(d)), (canon(source), canon(destination)))
                    }
                    other => panic!("{source} -> {destination} written back gave {other:?}"),
                }
            }
        }
        Err(ParseError::Incomplete { needed }) => assert!(needed > data.len()),
        Err(ParseError::Invalid(why)) => assert!(!why.is_empty()),
    }
});

//! Fuzzes the broker's packet decoding (rmqtt-codec plus drover's version-neutral model): no
//! byte sequence a device can send may panic, whether it arrives whole or split at any point,
//! and every decoded packet must be answerable (the acknowledgement encoders must not panic).

#![no_main]

use bytes::BytesMut;
use drover_mqtt::protocol::{Inbound, SubAckCode, Wire};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map(|b| usize::from(*b)).unwrap_or(0);
    let (head, tail) = data.split_at(split.min(data.len()));
    let mut wire = Wire::new();
    let mut buf = BytesMut::new();
    let mut out = BytesMut::new();
    for chunk in [head, tail] {
        buf.extend_from_slice(chunk);
        loop {
            match wire.decode(&mut buf) {
                Ok(Some(Inbound::Subscribe { packet_id, filters })) => {
                    let codes: Vec<SubAckCode> = filters.iter().map(|_| SubAckCode::Granted(1)).collect();
                    wire.suback(packet_id, &codes, &mut out);
                }
                Ok(Some(Inbound::PingReq)) => wire.pingresp(&mut out),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
});

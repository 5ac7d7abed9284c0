//! The receive side of a plain connection on real loopback sockets: a small buffer that grows
//! for a large frame, many frames from one read, and buffers given back when idle.

use std::io::Write;
use std::net::{TcpListener, TcpStream as StdTcpStream};
use std::time::{Duration, Instant};

use super::*;

fn pair() -> (Connection, StdTcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = StdTcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, remote) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    let conn = Connection::plain_port(TcpStream::from_std(server), remote, None, Instant::now());
    (conn, client)
}

fn channel_data(len: usize, fill: u8) -> Vec<u8> {
    let mut f = vec![0x40, 0x00];
    f.extend_from_slice(&(len as u16).to_be_bytes());
    f.resize(4 + len.div_ceil(4) * 4, fill);
    f
}

/// Fills until `want` bytes are buffered (loopback delivers at once, but give it time).
fn fill_until(conn: &mut Connection, want: usize) {
    let t0 = Instant::now();
    while conn.received().len() < want {
        conn.fill(Instant::now()).unwrap();
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "only {} bytes",
            conn.received().len()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn frames(conn: &mut Connection) -> Vec<usize> {
    let mut lens = Vec::new();
    while let Some(n) = conn.next_frame(Instant::now()).unwrap() {
        lens.push(n);
        conn.consume_frames(n);
    }
    lens
}

#[test]
fn a_frame_larger_than_the_first_buffer_arrives_whole() {
    let (mut conn, mut client) = pair();
    let big = channel_data(10_000, 7);
    let small = channel_data(5, 1);
    client.write_all(&[&big[..], &small[..]].concat()).unwrap();
    fill_until(&mut conn, big.len() + small.len());
    assert_eq!(frames(&mut conn), vec![big.len(), small.len()]);
}

#[test]
fn many_frames_from_one_write_and_buffers_given_back_when_idle() {
    let (mut conn, mut client) = pair();
    let one = channel_data(170, 3);
    let burst: Vec<u8> = (0..20).flat_map(|_| one.clone()).collect();
    client.write_all(&burst).unwrap();
    fill_until(&mut conn, burst.len());
    assert_eq!(frames(&mut conn), vec![one.len(); 20]);
    assert!(!conn.rx.is_empty());
    // Not idle yet: the buffer stays.
    conn.trim_idle(conn.last_rx - Duration::from_millis(1));
    assert!(!conn.rx.is_empty());
    conn.trim_idle(conn.last_rx + Duration::from_millis(1));
    assert!(
        conn.rx.is_empty(),
        "an idle connection holds no receive buffer"
    );
    // The next frames are read into a new buffer.
    client.write_all(&one).unwrap();
    fill_until(&mut conn, one.len());
    assert_eq!(frames(&mut conn), vec![one.len()]);
}

#[test]
fn a_partial_frame_keeps_its_buffer_while_idle() {
    let (mut conn, mut client) = pair();
    let one = channel_data(170, 3);
    client.write_all(&one[..50]).unwrap();
    fill_until(&mut conn, 50);
    assert!(frames(&mut conn).is_empty());
    conn.trim_idle(conn.last_rx + Duration::from_millis(1));
    assert_eq!(conn.received().len(), 50, "half a frame is kept");
    client.write_all(&one[50..]).unwrap();
    fill_until(&mut conn, one.len());
    assert_eq!(frames(&mut conn), vec![one.len()]);
}

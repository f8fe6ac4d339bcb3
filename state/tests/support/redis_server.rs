//! A `redis-server` of the test's own: a free loopback port, persistence
//! off, killed on drop.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`, killed (and reaped) when dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers PING.
    pub fn start() -> RedisServer {
        for _ in 0..20 {
            let port = free_port();
            if let Some(server) = RedisServer::try_start_on(port) {
                return server;
            }
        }
        panic!("could not start redis-server (is it installed? `apt-get install -y redis-server`)");
    }

    /// Starts one on `port` (after [`RedisServer::kill`], to test recovery).
    pub fn start_on(port: u16) -> RedisServer {
        for _ in 0..50 {
            if let Some(server) = RedisServer::try_start_on(port) {
                return server;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("could not restart redis-server on port {port}");
    }

    fn try_start_on(port: u16) -> Option<RedisServer> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--protected-mode", "yes", "--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (apt-get install -y redis-server)");
        let mut server = RedisServer { child: Some(child), port };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(child) = server.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    server.child = None;
                    return None; // exited: the port was taken
                }
            }
            // Ours, not another test's server that took the same port.
            if serves(port, server.pid()) {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database 0.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server now and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The process id (to stop and continue it).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Whether the server answering on `port` is process `pid`.
fn serves(port: u16, pid: u32) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(100)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    if stream.write_all(b"INFO server\r\n").is_err() {
        return false;
    }
    let needle = format!("process_id:{pid}\r\n");
    let mut reply = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buffer) {
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&reply);
        if text.contains(&needle) {
            return true;
        }
        if text.contains("process_id:") && text.contains("\r\nrun_id:") {
            return false;
        }
    }
    false
}

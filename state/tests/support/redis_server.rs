//! A `redis-server` of the test's own: a free loopback port, persistence
//! off, killed on drop; with extra arguments (TLS, ACL users), or three of
//! them made a Redis Cluster by `redis-cli --cluster create`.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`, killed (and reaped) when dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers PING.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Starts one on a free port with `extra` arguments after the usual
    /// ones (`--tls-port`, `--user`, `--cluster-enabled`, …); the plain
    /// port still answers, for the readiness check.
    pub fn start_with(extra: &[String]) -> RedisServer {
        for _ in 0..20 {
            let port = free_port();
            if let Some(server) = RedisServer::try_start_on(port, extra) {
                return server;
            }
        }
        panic!("could not start redis-server (is it installed? `apt-get install -y redis-server`)");
    }

    /// Starts one on `port` (after [`RedisServer::kill`], to test recovery).
    pub fn start_on(port: u16) -> RedisServer {
        RedisServer::restart_on(port, &[])
    }

    /// Starts this server again on its port, with its arguments, after
    /// [`RedisServer::kill`].
    pub fn restart(&mut self) {
        let again = RedisServer::restart_on(self.port, &self.extra);
        *self = again;
    }

    fn restart_on(port: u16, extra: &[String]) -> RedisServer {
        for _ in 0..50 {
            if let Some(server) = RedisServer::try_start_on(port, extra) {
                return server;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("could not restart redis-server on port {port}");
    }

    fn try_start_on(port: u16, extra: &[String]) -> Option<RedisServer> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--protected-mode", "yes", "--loglevel", "warning"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (apt-get install -y redis-server)");
        let mut server = RedisServer { child: Some(child), port, extra: extra.to_vec() };
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

/// A free loopback port (for a TLS port or a cluster bus).
pub fn free_port() -> u16 {
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

/// `redis-cli -p PORT ARGS…` against a plain port; its standard output.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli runs (apt-get install -y redis-tools)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A Redis Cluster of three masters (no replicas), on free ports, made by
/// `redis-cli --cluster create`, with `cluster-require-full-coverage no`
/// (a node down fails only its own slots). Its files live in a directory
/// of its own, removed on drop with the servers.
pub struct RedisCluster {
    /// The three masters.
    pub nodes: Vec<RedisServer>,
    dir: std::path::PathBuf,
}

impl RedisCluster {
    /// Starts three nodes, joins them, and waits until every node says
    /// `cluster_state:ok`.
    pub fn start() -> RedisCluster {
        let dir = std::env::temp_dir().join(format!("sb-cluster-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).expect("a directory for the cluster's files");
        let nodes: Vec<RedisServer> = (0..3)
            .map(|i| {
                RedisServer::start_with(&[
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    dir.join(format!("nodes-{i}-{}.conf", free_port())).display().to_string(),
                    "--cluster-port".into(),
                    free_port().to_string(),
                    "--cluster-require-full-coverage".into(),
                    "no".into(),
                    "--cluster-node-timeout".into(),
                    "2000".into(),
                ])
            })
            .collect();
        let addresses: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())).collect();
        let mut create = vec!["--cluster", "create"];
        create.extend(addresses.iter().map(String::as_str));
        create.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let created = redis_cli(nodes[0].port(), &create);
        assert!(created.contains("All 16384 slots covered"), "redis-cli --cluster create:\n{created}");
        let cluster = RedisCluster { nodes, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cluster.nodes.iter().all(|n| redis_cli(n.port(), &["cluster", "info"]).contains("cluster_state:ok")) {
            assert!(Instant::now() < deadline, "the cluster did not reach cluster_state:ok");
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// The seed URLs of every node.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes.iter().map(|n| format!("redis://127.0.0.1:{}", n.port())).collect()
    }

    /// The node (its position in `nodes`) that serves `key`'s slot.
    pub fn node_of(&self, key: &str) -> usize {
        let slot: u16 = redis_cli(self.nodes[0].port(), &["cluster", "keyslot", key]).trim().parse().expect("a slot");
        let serves = |port: u16| {
            let nodes = redis_cli(port, &["cluster", "nodes"]);
            let mine = nodes.lines().find(|line| line.contains("myself")).unwrap_or_default().to_owned();
            mine.split_whitespace().skip(8).any(|range| {
                let (low, high) = range.split_once('-').unwrap_or((range, range));
                matches!((low.parse::<u16>(), high.parse::<u16>()), (Ok(l), Ok(h)) if (l..=h).contains(&slot))
            })
        };
        self.nodes.iter().position(|n| serves(n.port())).expect("a node serves every slot")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A private CA and a server certificate it signed for `127.0.0.1` and
/// `localhost`, written as PEM files into a directory removed on drop.
pub struct TestCa {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// Files: the CA certificate, the server's certificate and key.
    pub ca_file: std::path::PathBuf,
    pub cert_file: std::path::PathBuf,
    pub key_file: std::path::PathBuf,
    dir: std::path::PathBuf,
}

impl TestCa {
    /// A new CA (named `name`) and a server certificate signed by it.
    pub fn new(name: &str) -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, name);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();

        let dir = std::env::temp_dir().join(format!("sb-tls-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |file: &str, text: &str| {
            let path = dir.join(file);
            std::fs::write(&path, text).unwrap();
            path
        };
        TestCa {
            ca_pem: ca_cert.pem(),
            ca_file: write("ca.pem", &ca_cert.pem()),
            cert_file: write("server.pem", &cert.pem()),
            key_file: write("server.key", &key.serialize_pem()),
            dir,
        }
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `redis-server` answering TLS (certificate of `ca`) on a port of its
/// own besides the plain one, with one ACL user `alice` (password
/// `secret`) and the default user off: `(server, tls port)`.
pub fn start_tls(ca: &TestCa) -> (RedisServer, u16) {
    let tls_port = free_port();
    let server = RedisServer::start_with(&[
        "--tls-port".into(),
        tls_port.to_string(),
        "--tls-cert-file".into(),
        ca.cert_file.display().to_string(),
        "--tls-key-file".into(),
        ca.key_file.display().to_string(),
        "--tls-ca-cert-file".into(),
        ca.ca_file.display().to_string(),
        "--tls-auth-clients".into(),
        "no".into(),
        "--user".into(),
        "alice".into(),
        "on".into(),
        ">secret".into(),
        "~*".into(),
        "&*".into(),
        "+@all".into(),
    ]);
    (server, tls_port)
}

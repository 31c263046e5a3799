//! The embedded userspace WireGuard device: gotatun in this process, on a TUN device, answering
//! the standard UAPI socket `/var/run/wireguard/<name>.sock` (so `wg show`, and
//! wireguard-control's `Backend::Userspace` through which clusterwire configures it, both work).
//!
//! The device runs on its own thread with its own tokio runtime, so it neither needs nor blocks
//! the caller's runtime, and the blocking wireguard-control calls made by the caller can never
//! starve it. Threads inherit their creator's network namespace: the TUN device and the UDP
//! socket live in the namespace of the thread that calls [`EmbeddedDevice::start`].
use std::{
    fs,
    io::{self, Write as _},
    os::unix::{
        fs::{DirBuilderExt as _, PermissionsExt as _},
        net::UnixStream,
    },
    path::PathBuf,
    sync::mpsc,
    thread::JoinHandle,
    time::Duration,
};

use gotatun::device::{
    DefaultDeviceTransports, Device, DeviceBuilder,
    uapi::{UapiClient, UapiServer},
};
use tokio::{net::UnixListener, sync::oneshot};

use super::{
    config::{UAPI_DIR, uapi_socket},
    error::WireGuardError,
};
use crate::error::check_name;

/// Worker threads of a device's runtime: one to receive from the TUN device while the other
/// handles the UDP socket.
const WORKER_THREADS: usize = 2;
/// How long a stopping device waits for its tasks.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// A running embedded device; stopping it (drop) removes its TUN device and UAPI socket.
#[derive(Debug)]
pub(crate) struct EmbeddedDevice {
    name: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedDevice {
    /// Creates the TUN device `name` in the caller's network namespace, with no key and no peer,
    /// and serves its UAPI socket. Returns once both exist.
    pub(crate) fn start(name: &str) -> Result<Self, WireGuardError> {
        check_name(name)?;
        claim_socket_path(name)?;
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        let owned = name.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("wg-{name}"))
            .spawn(move || run(&owned, &ready_tx, stop_rx))
            .map_err(|source| WireGuardError::Runtime {
                link: name.to_owned(),
                source,
            })?;
        let started = ready_rx.recv();
        match started {
            Ok(Ok(())) => Ok(Self {
                name: name.to_owned(),
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
            Ok(Err(error)) => {
                let _ = thread.join();
                Err(error)
            }
            Err(mpsc::RecvError) => {
                let _ = thread.join();
                Err(WireGuardError::EmbeddedGone {
                    link: name.to_owned(),
                })
            }
        }
    }

    /// The device's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for EmbeddedDevice {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Refuses a name whose socket another live device answers on; removes a stale socket.
fn claim_socket_path(name: &str) -> Result<(), WireGuardError> {
    let path = uapi_socket(name);
    if UnixStream::connect(&path).is_ok() {
        return Err(WireGuardError::NameInUse { path });
    }
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(WireGuardError::Uapi { path, source }),
    }
}

/// The device thread: builds the runtime, starts the device, reports, runs until told to stop.
fn run(name: &str, ready: &mpsc::Sender<Result<(), WireGuardError>>, stop: oneshot::Receiver<()>) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .thread_name(format!("wg-{name}-rt"))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(source) => {
            let _ = ready.send(Err(WireGuardError::Runtime {
                link: name.to_owned(),
                source,
            }));
            return;
        }
    };
    let mut files = UapiFiles::default();
    runtime.block_on(async {
        let device = match start_device(name, &mut files).await {
            Ok(device) => device,
            Err(error) => {
                let _ = ready.send(Err(error));
                return;
            }
        };
        if ready.send(Ok(())).is_ok() {
            // An error only means the handle was dropped without a stop: stop as well.
            let _ = stop.await;
        }
        device.stop().await;
    });
    runtime.shutdown_timeout(SHUTDOWN_TIMEOUT);
    drop(files);
}

async fn start_device(
    name: &str,
    files: &mut UapiFiles,
) -> Result<Device<DefaultDeviceTransports>, WireGuardError> {
    let embedded = |source| WireGuardError::Embedded {
        link: name.to_owned(),
        source,
    };
    let (client, server) = UapiServer::new();
    let device = DeviceBuilder::new()
        .with_default_udp()
        .create_tun(name)
        .map_err(embedded)?
        .with_uapi(server)
        .build()
        .await
        .map_err(embedded)?;
    let listener = files.bind(name)?;
    tokio::spawn(serve_uapi(listener, client));
    Ok(device)
}

/// Accepts UAPI connections; each one is served on its own thread by gotatun's protocol
/// handler (a blocking reader, so it must not run on the runtime).
async fn serve_uapi(listener: UnixListener, client: UapiClient) {
    while let Ok((stream, _)) = listener.accept().await {
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        if stream.set_nonblocking(false).is_ok() {
            client.clone().wrap_read_write(stream);
        }
    }
}

/// The socket and name file of a device, removed on drop.
#[derive(Default)]
struct UapiFiles {
    created: Vec<PathBuf>,
}

impl UapiFiles {
    /// Binds `<name>.sock` (owner-only, like wireguard-go's) and writes `<name>.name`, which
    /// wireguard-control's `Device::list(Backend::Userspace)` looks for.
    fn bind(&mut self, name: &str) -> Result<UnixListener, WireGuardError> {
        let dir = PathBuf::from(UAPI_DIR);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)
            .map_err(|source| WireGuardError::Uapi {
                path: dir.clone(),
                source,
            })?;
        let socket = uapi_socket(name);
        let uapi = |path: &PathBuf| {
            let path = path.clone();
            move |source| WireGuardError::Uapi { path, source }
        };
        let listener = UnixListener::bind(&socket).map_err(uapi(&socket))?;
        self.created.push(socket.clone());
        fs::set_permissions(&socket, fs::Permissions::from_mode(0o600)).map_err(uapi(&socket))?;
        let name_file = dir.join(format!("{name}.name"));
        fs::File::create(&name_file)
            .and_then(|mut file| writeln!(file, "{name}"))
            .map_err(uapi(&name_file))?;
        self.created.push(name_file);
        Ok(listener)
    }
}

impl Drop for UapiFiles {
    fn drop(&mut self) {
        for path in &self.created {
            let _ = fs::remove_file(path);
        }
    }
}

//! Small rtnetlink exchanges of the attach code, in the calling thread's network namespace: a
//! device's index and link type, and, on kernels without TCX, the program of one filter, counting
//! the filters left on a clsact qdisc and removing it.
use futures::TryStreamExt as _;
use rtnetlink::packet_route::tc::{TcAttribute, TcFilterBpfOption, TcHandle, TcOption};

/// Runs one rtnetlink exchange on a private single-threaded runtime, on a thread of its own (it
/// inherits the calling thread's network namespace), so it works whether or not the caller is
/// itself inside a tokio runtime, and callers need none.
fn with_handle<T, F>(f: impl FnOnce(rtnetlink::Handle) -> F + Send) -> std::io::Result<T>
where
    F: Future<Output = Result<T, rtnetlink::Error>>,
    T: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()?;
                runtime.block_on(async {
                    let (connection, handle, _) = rtnetlink::new_connection()?;
                    let task = tokio::spawn(connection);
                    let result = f(handle).await.map_err(std::io::Error::other);
                    task.abort();
                    result
                })
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the netlink thread panicked")))
    })
}

fn ifindex(device: &str) -> std::io::Result<i32> {
    let index = nix::net::if_::if_nametoindex(device)?;
    i32::try_from(index).map_err(std::io::Error::other)
}

/// Number of `cls_bpf` (or other) filters on the clsact hooks of `device`.
pub(crate) fn filters_left(device: &str) -> std::io::Result<usize> {
    let index = ifindex(device)?;
    with_handle(|handle| async move {
        let mut total = 0;
        for egress in [false, true] {
            let request = handle.traffic_filter(index).get();
            let request = if egress {
                request.egress()
            } else {
                request.ingress()
            };
            let filters: Vec<_> = request.execute().try_collect().await?;
            // A dump lists each filter's chain head and its instances; count instances (they
            // carry a kind and options).
            total += filters
                .iter()
                .filter(|m| {
                    m.header.handle != TcHandle::UNSPEC
                        && m.attributes
                            .iter()
                            .any(|a| matches!(a, TcAttribute::Kind(_)))
                })
                .count();
        }
        Ok(total)
    })
}

/// The id of the program run by the `cls_bpf` filter of `priority` and `handle` on the ingress
/// (or egress) clsact hook of `device`; `None` when there is no such filter.
pub(crate) fn filter_program(
    device: &str,
    egress: bool,
    priority: u16,
    handle: u32,
) -> std::io::Result<Option<u32>> {
    let index = ifindex(device)?;
    with_handle(|rt| async move {
        let request = rt.traffic_filter(index).get();
        let request = if egress {
            request.egress()
        } else {
            request.ingress()
        };
        let filters: Vec<_> = request.execute().try_collect().await?;
        Ok(filters
            .iter()
            .filter(|m| {
                u32::from(m.header.handle) == handle && m.header.info >> 16 == u32::from(priority)
            })
            .flat_map(|m| &m.attributes)
            .find_map(|a| match a {
                TcAttribute::Options(options) => options.iter().find_map(|o| match o {
                    TcOption::Bpf(TcFilterBpfOption::ProgId(id)) => Some(*id),
                    _ => None,
                }),
                _ => None,
            }))
    })
}

/// Deletes the clsact qdisc of `device`.
pub(crate) fn delete_clsact(device: &str) -> std::io::Result<()> {
    let index = ifindex(device)?;
    with_handle(|handle| async move {
        let mut request = handle.qdisc().del(index);
        let message = request.message_mut();
        message.header.parent = TcHandle::CLSACT;
        message.header.handle = TcHandle {
            major: 0xffff,
            minor: 0,
        };
        request.execute().await
    })
}

/// The index and `ARPHRD_*` link type of `device`, `None` if there is no such device.
pub(crate) fn link_type(device: &str) -> std::io::Result<Option<(u32, u16)>> {
    let name = device.to_owned();
    with_handle(|handle| async move {
        let mut links = handle.link().get().match_name(name).execute();
        match links.try_next().await {
            Ok(Some(link)) => Ok(Some((
                link.header.index,
                u16::from(link.header.link_layer_type),
            ))),
            Ok(None) => Ok(None),
            Err(rtnetlink::Error::NetlinkError(e))
                if e.raw_code() == -(nix::errno::Errno::ENODEV as i32) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    })
}

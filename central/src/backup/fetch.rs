//! The receiving end of the ops API's `Backup`: the hub's chunks written into a new backup
//! folder ([`DirSink`]), the manifest checked against what arrived and written last.

use std::path::Path;

use hamgam_proto::ops::v1 as ops;
use hamgam_proto::ops::v1::hub_admin_client::HubAdminClient;

use super::write::{DirSink, Sink};
use super::{BackupError, Manifest};

/// What [`fetch`] reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetching {
    /// The hub took the point: records it covers, how long batches were held back, whether
    /// the live digest was taken.
    Started {
        records: u64,
        pause_ms: u64,
        live_digest: bool,
    },
    /// Records received so far, of the total.
    Records { done: u64, total: u64 },
}

/// Asks the hub on `channel` (an ops certificate's) for a backup and writes it into the new or
/// empty folder `to`.
pub async fn fetch(
    channel: tonic::transport::Channel,
    request: ops::BackupRequest,
    to: &Path,
    mut progress: impl FnMut(Fetching),
) -> Result<Manifest, BackupError> {
    let refused = |s: tonic::Status| BackupError::Refused {
        code: format!("{:?}", s.code()),
        message: s.message().to_owned(),
    };
    let mut sink = DirSink::create(to)?;
    let mut client = HubAdminClient::new(channel).max_decoding_message_size(64 * 1024 * 1024);
    let mut stream = client.backup(request).await.map_err(refused)?.into_inner();
    let mut total = 0;
    while let Some(chunk) = stream.message().await.map_err(refused)? {
        match chunk.body {
            Some(ops::backup_chunk::Body::Started(s)) => {
                total = s.records;
                progress(Fetching::Started {
                    records: s.records,
                    pause_ms: s.pause_ms,
                    live_digest: s.live_digest,
                });
            }
            Some(ops::backup_chunk::Body::File(f)) => {
                sink.chunk(&f.name, &f.data, f.last)?;
                progress(Fetching::Records {
                    done: sink.records(),
                    total,
                });
            }
            None => {}
        }
    }
    Ok(sink.finish()?.0)
}

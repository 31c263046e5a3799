//! The self-check probe: loads the packet-counting program and reads its counters.
use aya::{
    Ebpf, EbpfError,
    maps::{MapError, PerCpuArray},
    programs::{ProgramError, SchedClassifier},
};
use clusterwire_common::probe::{PROBE_COUNTERS_MAP, PROBE_PROGRAM, ProbeCounter};

/// Why the probe could not be loaded or read.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The object failed to load (BTF, map creation or relocation).
    #[error("loading the eBPF object failed")]
    Load(#[from] EbpfError),
    /// The program is missing from the object or the verifier rejected it.
    #[error("loading program {PROBE_PROGRAM} failed")]
    Program(#[from] ProgramError),
    /// The counter map is missing or has the wrong type.
    #[error("opening map {PROBE_COUNTERS_MAP} failed")]
    Map(#[from] MapError),
    /// Pinning a map to bpffs failed.
    #[error("pinning map {PROBE_COUNTERS_MAP} at {path} failed")]
    Pin {
        /// Where it was to be pinned.
        path: String,
        /// Why it failed.
        #[source]
        source: aya::pin::PinError,
    },
    /// A name the object must contain is absent.
    #[error("the eBPF object has no {0}")]
    Missing(&'static str),
}

/// The loaded probe program and its counters.
#[derive(Debug)]
pub struct Probe {
    ebpf: Ebpf,
}

impl Probe {
    /// Loads the embedded object and the probe program into the kernel (not attached).
    pub fn load() -> Result<Self, ProbeError> {
        let mut ebpf = Ebpf::load(crate::object::OBJECT)?;
        let program: &mut SchedClassifier = ebpf
            .program_mut(PROBE_PROGRAM)
            .ok_or(ProbeError::Missing(PROBE_PROGRAM))?
            .try_into()?;
        program.load()?;
        Ok(Self { ebpf })
    }

    /// The loaded classifier, to attach or to run with `TestRun`.
    pub fn program(&mut self) -> Result<&mut SchedClassifier, ProbeError> {
        Ok(self
            .ebpf
            .program_mut(PROBE_PROGRAM)
            .ok_or(ProbeError::Missing(PROBE_PROGRAM))?
            .try_into()?)
    }

    /// Pins the counter map at `path` (on a bpffs), so `bpftool map dump pinned <path>` shows it.
    pub fn pin_counters(&self, path: &std::path::Path) -> Result<(), ProbeError> {
        let map = self
            .ebpf
            .map(PROBE_COUNTERS_MAP)
            .ok_or(ProbeError::Missing(PROBE_COUNTERS_MAP))?;
        map.pin(path).map_err(|source| ProbeError::Pin {
            path: path.display().to_string(),
            source,
        })
    }

    /// The sum over CPUs of one counter.
    pub fn counter(&self, which: ProbeCounter) -> Result<u64, ProbeError> {
        let map = self
            .ebpf
            .map(PROBE_COUNTERS_MAP)
            .ok_or(ProbeError::Missing(PROBE_COUNTERS_MAP))?;
        let counters: PerCpuArray<_, u64> = PerCpuArray::try_from(map)?;
        let values = counters.get(&(which as u32), 0)?;
        Ok(values.iter().sum())
    }
}

//! The daemon's two requests from outside: graceful shutdown, one signal
//! every part of the daemon watches, raised once by SIGTERM, SIGINT or the
//! owner of the daemon; and model reload, raised by SIGHUP.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A cloneable stop signal.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    requested: Arc<AtomicBool>,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Asks every part to stop; idempotent.
    pub fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
    }

    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Raises the signal on SIGTERM and SIGINT; a second one exits at once
    /// with status 130.
    pub fn on_signals(&self) -> std::io::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        for signal in [SIGTERM, SIGINT] {
            signal_hook::flag::register_conditional_shutdown(
                signal,
                130,
                Arc::clone(&self.requested),
            )?;
            signal_hook::flag::register(signal, Arc::clone(&self.requested))?;
        }
        Ok(())
    }
}

/// A request to read the streams' bundles again, taken by the consumer
/// thread.
#[derive(Debug, Clone, Default)]
pub struct Reload {
    requested: Arc<AtomicBool>,
}

impl Reload {
    pub fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
    }

    /// Whether a reload was asked for since the last call.
    pub fn take(&self) -> bool {
        self.requested.swap(false, Ordering::SeqCst)
    }

    /// Raises the request on SIGHUP.
    pub fn on_sighup(&self) -> std::io::Result<()> {
        signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&self.requested))?;
        Ok(())
    }
}

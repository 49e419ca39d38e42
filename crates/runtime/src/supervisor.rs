//! Every daemon thread runs under the supervisor. When one ends before the
//! daemon was asked to stop (with an error, a panic, or quietly), the
//! whole daemon stops: the stop signal goes up, `/readyz` answers 503, the
//! other threads drain within `shutdown_timeout_secs`, and that thread's
//! error becomes the daemon's. No thread can die and leave a process that
//! still answers its health checks.
//!
//! Services (the HTTP endpoint) keep running while the rest drains, so
//! that probes see the daemon going; they stop on [`Supervisor::closing`],
//! raised once every other thread has ended.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use crate::error::DaemonError;
use crate::shutdown::Shutdown;

/// How a thread ended.
struct Exit {
    thread: String,
    service: bool,
    result: Result<(), DaemonError>,
}

/// The daemon's threads and the one place their ends are reported to.
pub struct Supervisor {
    shutdown: Shutdown,
    closing: Shutdown,
    exits: Sender<Exit>,
    reports: Receiver<Exit>,
    threads: Vec<JoinHandle<()>>,
    /// Threads that are not services.
    workers: usize,
}

impl Supervisor {
    pub fn new(shutdown: Shutdown) -> Supervisor {
        let (exits, reports) = mpsc::channel();
        Supervisor {
            shutdown,
            closing: Shutdown::new(),
            exits,
            reports,
            threads: Vec::new(),
            workers: 0,
        }
    }

    /// The signal services stop on: raised once every other thread ended.
    pub fn closing(&self) -> Shutdown {
        self.closing.clone()
    }

    /// Runs `run(&mut task)` on a thread named `name`. Its end is reported
    /// before `task` is dropped, so a failure is on record before the
    /// channels it owned close and its neighbours notice.
    pub fn spawn<T: Send + 'static>(
        &mut self,
        name: &str,
        task: T,
        run: impl FnOnce(&mut T) -> Result<(), DaemonError> + Send + 'static,
    ) -> Result<(), DaemonError> {
        self.workers += 1;
        self.start(name, false, task, run)
    }

    /// Like [`Supervisor::spawn`], for a service: a thread that should
    /// end only once [`Supervisor::closing`] is raised.
    pub fn spawn_service<T: Send + 'static>(
        &mut self,
        name: &str,
        task: T,
        run: impl FnOnce(&mut T) -> Result<(), DaemonError> + Send + 'static,
    ) -> Result<(), DaemonError> {
        self.start(name, true, task, run)
    }

    fn start<T: Send + 'static>(
        &mut self,
        name: &str,
        service: bool,
        mut task: T,
        run: impl FnOnce(&mut T) -> Result<(), DaemonError> + Send + 'static,
    ) -> Result<(), DaemonError> {
        let exits = self.exits.clone();
        let shutdown = self.shutdown.clone();
        let thread = name.to_owned();
        let handle = std::thread::Builder::new()
            .name(thread.clone())
            .spawn(move || {
                let result = match catch_unwind(AssertUnwindSafe(|| run(&mut task))) {
                    Ok(Ok(())) if !shutdown.is_requested() => Err(DaemonError::Thread(format!(
                        "{thread} stopped before shutdown was asked"
                    ))),
                    Ok(result) => result,
                    Err(panic) => Err(DaemonError::Thread(format!(
                        "{thread} panicked: {}",
                        panic_message(panic.as_ref())
                    ))),
                };
                if let Err(error) = &result {
                    if !shutdown.is_requested() {
                        tracing::error!(thread, %error, "a daemon thread failed; stopping");
                    }
                    shutdown.request();
                }
                let _ = exits.send(Exit {
                    thread,
                    service,
                    result,
                });
                drop(task);
            })
            .map_err(|e| DaemonError::Thread(format!("cannot start {name}: {e}")))?;
        self.threads.push(handle);
        Ok(())
    }

    /// Waits for every thread, raising [`Supervisor::closing`] once all
    /// but the services have ended. The first failure reported is the
    /// result; later ones (often its consequences) are logged.
    pub fn join(self) -> Result<(), DaemonError> {
        let Supervisor {
            closing,
            exits,
            reports,
            threads,
            mut workers,
            ..
        } = self;
        drop(exits);
        if workers == 0 {
            closing.request();
        }
        let mut first: Result<(), DaemonError> = Ok(());
        for Exit {
            thread,
            service,
            result,
        } in reports
        {
            if !service {
                workers -= 1;
                if workers == 0 {
                    closing.request();
                }
            }
            match result {
                Err(error) if first.is_ok() => first = Err(error),
                Err(error) => tracing::debug!(thread, %error, "after the first failure"),
                Ok(()) => {}
            }
        }
        for handle in threads {
            let _ = handle.join();
        }
        first
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_thread_stops_the_others_and_its_error_wins() {
        let shutdown = Shutdown::new();
        let mut supervisor = Supervisor::new(shutdown.clone());
        let watcher = shutdown.clone();
        supervisor
            .spawn("steady", (), move |_| {
                while !watcher.is_requested() {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Ok(())
            })
            .unwrap();
        supervisor
            .spawn("failing", (), |_| {
                Err(DaemonError::Thread("injected failure".into()))
            })
            .unwrap();
        let error = supervisor.join().unwrap_err();
        assert_eq!(error.to_string(), "injected failure");
        assert!(shutdown.is_requested());
    }

    #[test]
    fn a_panic_or_a_quiet_exit_is_a_failure() {
        let mut supervisor = Supervisor::new(Shutdown::new());
        supervisor
            .spawn("panicking", (), |_| panic!("index out of bounds"))
            .unwrap();
        let error = supervisor.join().unwrap_err().to_string();
        assert_eq!(error, "panicking panicked: index out of bounds");

        let mut supervisor = Supervisor::new(Shutdown::new());
        supervisor.spawn("quiet", (), |_| Ok(())).unwrap();
        let error = supervisor.join().unwrap_err().to_string();
        assert_eq!(error, "quiet stopped before shutdown was asked");
    }

    #[test]
    fn threads_ending_after_a_requested_shutdown_are_not_failures() {
        let shutdown = Shutdown::new();
        let mut supervisor = Supervisor::new(shutdown.clone());
        shutdown.request();
        supervisor.spawn("drained", (), |_| Ok(())).unwrap();
        supervisor.join().unwrap();
    }
}

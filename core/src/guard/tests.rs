//! The guard's rules, driven the way the registry wrappers and the pool drive them.

use std::thread::sleep;
use std::time::{Duration, Instant};

use super::*;

fn policy() -> GuardPolicy {
    GuardPolicy {
        call_budget: Duration::from_millis(5),
        native_deadline: Duration::from_millis(40),
        hang_after: Duration::from_millis(300),
        window: Duration::from_secs(60),
        min_calls: 10,
        max_failure_ratio: 0.5,
        max_overrun_ratio: 0.5,
        cpu_share: 1.0,
        cpu_burst: Duration::from_secs(10),
    }
}

fn call(guard: &KindGuard, failure: Option<&str>) -> Result<(), Skip> {
    let admitted = guard.admit()?;
    guard.finish(admitted, failure);
    Ok(())
}

#[test]
fn an_intermittent_failure_is_disabled_by_its_ratio() {
    let guard = KindGuard::new("script:flaky", "v1", &policy());
    // Four failures in five calls: consecutive-failure counting would never catch this.
    for n in 0..10 {
        let failure = (n % 5 != 0).then_some("boom");
        call(&guard, failure).unwrap();
    }
    let status = guard.status();
    assert_eq!(status.state, GuardState::Disabled);
    assert_eq!((status.calls, status.failures), (10, 8));
    let reason = status.reason.unwrap();
    assert!(
        reason.starts_with("8 of its last 10 calls failed"),
        "{reason}"
    );
    assert!(matches!(call(&guard, None), Err(Skip::Disabled(_))));
    assert_eq!(guard.status().skipped, 1);
}

#[test]
fn rare_failures_and_too_few_calls_do_not_disable() {
    let guard = KindGuard::new("script:steady", "v1", &policy());
    for n in 0..100 {
        call(&guard, (n % 3 == 0).then_some("x")).unwrap();
    }
    assert_eq!(
        guard.status().state,
        GuardState::Active,
        "a third is under one half"
    );
    let young = KindGuard::new("script:young", "v1", &policy());
    for _ in 0..9 {
        call(&young, Some("x")).unwrap();
    }
    assert_eq!(young.status().state, GuardState::Active, "under min_calls");
    call(&young, Some("x")).unwrap();
    assert_eq!(young.status().state, GuardState::Disabled);
}

#[test]
fn overruns_are_counted_and_disable_by_their_ratio() {
    let guard = KindGuard::new("native:slow", "v1", &policy());
    // Far past the budget: the coarse clock may lag a few ms on a loaded machine.
    for _ in 0..10 {
        let admitted = guard.admit().unwrap();
        sleep(Duration::from_millis(25));
        guard.finish(admitted, None);
    }
    let status = guard.status();
    assert_eq!(status.overruns, 10);
    assert_eq!(status.state, GuardState::Disabled);
    assert!(status.reason.unwrap().contains("took 5 ms or more"));
}

#[test]
fn the_time_budget_skips_calls_until_it_pays_back() {
    let guard = KindGuard::new(
        "script:busy",
        "v1",
        &GuardPolicy {
            cpu_share: 0.1,
            cpu_burst: Duration::from_millis(10),
            call_budget: Duration::from_secs(1),
            ..policy()
        },
    );
    let mut admitted = 0;
    let started = Instant::now();
    while guard.admit().map(|call| {
        sleep(Duration::from_millis(3));
        guard.finish(call, None);
    }) != Err(Skip::OverBudget)
    {
        admitted += 1;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "never throttled"
        );
    }
    assert!(
        (2..=10).contains(&admitted),
        "{admitted} calls before the budget"
    );
    // 0.1 of a core: ~30 ms of debt pays back in ~300 ms.
    sleep(Duration::from_millis(600));
    assert!(guard.admit().is_ok(), "admitted again once paid back");
    assert!(guard.status().skipped >= 1);
    assert_eq!(
        guard.status().state,
        GuardState::Active,
        "throttling is not disabling"
    );
}

#[test]
fn routing_without_user_code_skips_every_kind() {
    let guard = KindGuard::new("script:any", "v1", &policy());
    assert_eq!(skip_user_code(|| call(&guard, None)), Err(Skip::Overload));
    assert_eq!(call(&guard, None), Ok(()), "only inside skip_user_code");
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

#[test]
fn a_call_past_its_deadline_is_set_aside_and_a_hang_disables_its_kind() {
    let policy = policy();
    let pool = UserCodePool::start(1, 16, &policy);
    let guard = KindGuard::new("native:hang", "v1", &policy);
    let job_guard = guard.clone();
    let started = Instant::now();
    let answer = block_on(pool.run(move || match job_guard.admit() {
        Ok(call) => {
            sleep(Duration::from_millis(600));
            job_guard.finish(call, None);
            "slow"
        }
        Err(_) => "went on without it",
    }));
    let waited = started.elapsed();
    assert_eq!(answer, "went on without it");
    assert!(
        waited < Duration::from_millis(300),
        "released after {waited:?}"
    );
    let status = guard.status();
    assert_eq!((status.timeouts, status.set_aside), (1, 1));
    assert_eq!(pool.status().rerouted, 1);
    assert_eq!(pool.status().set_aside_threads, 1);
    assert_eq!(
        pool.status().threads,
        1,
        "a new thread took the stuck one's place"
    );
    // Still out after hang_after: the kind is disabled, with the reason.
    sleep(Duration::from_millis(400));
    let status = guard.status();
    assert_eq!(status.state, GuardState::Disabled);
    assert!(
        status
            .reason
            .as_deref()
            .unwrap()
            .contains("did not return within 300 ms"),
        "{status:?}"
    );
    // The stuck call returns in the end and is not counted twice.
    sleep(Duration::from_millis(300));
    let status = guard.status();
    assert_eq!((status.calls, status.set_aside), (1, 0));
    // The pool still answers.
    assert_eq!(block_on(pool.run(|| 7)), 7);
}

#[test]
fn a_full_pool_routes_at_once_without_user_code() {
    let policy = policy();
    let pool = UserCodePool::start(1, 1, &policy);
    let guard = KindGuard::new("script:queued", "v1", &policy);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let busy = pool.clone();
    let first = runtime.spawn(async move {
        busy.run(|| {
            sleep(Duration::from_millis(200));
            "first"
        })
        .await
    });
    sleep(Duration::from_millis(50));
    let queued = pool.clone();
    let second = runtime.spawn(async move { queued.run(|| "second").await });
    sleep(Duration::from_millis(20));
    let job_guard = guard.clone();
    let third = runtime.block_on(pool.run(move || call(&job_guard, None)));
    assert_eq!(third, Err(Skip::Overload));
    assert_eq!(runtime.block_on(first).unwrap(), "first");
    assert_eq!(runtime.block_on(second).unwrap(), "second");
    assert_eq!(pool.status().overflowed, 1);
}

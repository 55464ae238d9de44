//! Gemini's answers within the worker's byte budget (`WORKER_MEMORY_BUDGET_MB`) and under the
//! `finishing` gate, against the fake Gemini over real HTTP: an answer is read only once its
//! share of the budget is held, a share larger than the whole budget is read alone, and a gate
//! that never opens is waited for only within the call's timeout.

use std::sync::Arc;
use std::time::Duration;

use fakes::FakeGemini;
use nanobanana::budget::MemoryBudget;
use nanobanana::domain::ImageSize;
use nanobanana::gemini::{answer, Client, Gate, Outcome};
use tokio::sync::Semaphore;

use super::gemini::{config, request, LITE, PRO};

const MIB: u64 = 1 << 20;

/// A fake answering full-size pictures (a 1K PNG is megabytes of base64).
async fn full_size() -> FakeGemini {
    FakeGemini::start(fakes::GeminiConfig::default()).await.expect("fake gemini starts")
}

fn gates() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(4))
}

#[tokio::test]
async fn gemini_an_answer_is_read_only_once_its_share_of_the_memory_budget_is_free() {
    let fake = full_size().await;
    let client = Client::new(&config(&fake)).expect("client");
    let budget = MemoryBudget::new(64 * MIB);
    // Another job holds its references: 4 MiB are left, less than a 1K answer's share.
    let other = budget.reserve(60 * MIB).await;

    let call = {
        let (client, budget) = (client.clone(), budget.clone());
        tokio::spawn(async move {
            let mut memory = budget.empty();
            let gate = Gate { finishing: gates(), memory: &mut memory, base: 0 };
            let (reply, _finishing) =
                client.generate_gated(&request(PRO, "a lemon [[png]]"), Some(gate)).await;
            (reply, memory)
        })
    };
    fake.wait_for_requests(1, Duration::from_secs(30)).await.expect("Gemini answered");
    // The answer is on its way, but its bytes have no room: it waits.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!call.is_finished(), "the answer was read without room in the budget");
    }
    drop(other);
    let (reply, memory) = call.await.expect("call task");
    let Outcome::Image(image) = &reply.outcome else { panic!("expected an image: {reply:?}") };
    // The share held covers the body read (base64 of the picture) and the preview's bitmaps.
    let body = image.bytes.len() as u64 * 4 / 3;
    assert!(memory.held() >= answer::need(Some(ImageSize::K1), body), "{} held", memory.held());
    assert!(memory.held() <= 64 * MIB);
    assert_eq!(budget.available(), 64 * MIB - memory.held());
    drop(memory);
    assert_eq!(budget.available(), 64 * MIB, "all returned when the job lets go");
}

#[tokio::test]
async fn gemini_an_answer_larger_than_the_whole_budget_is_read_alone() {
    let fake = full_size().await;
    let client = Client::new(&config(&fake)).expect("client");
    // 4 MiB: less than any 1K answer's share, so the answer takes the whole budget.
    let budget = MemoryBudget::new(4 * MIB);
    let mut memory = budget.empty();
    // References kept by this same job: the answer's share is added to them, never waited for.
    memory.grow_to(MIB).await;
    let gate = Gate { finishing: gates(), memory: &mut memory, base: MIB };
    let (reply, _finishing) = client.generate_gated(&request(PRO, "a big lemon"), Some(gate)).await;
    assert!(matches!(reply.outcome, Outcome::Image(_)), "{reply:?}");
    assert!(memory.is_whole());
    assert_eq!(budget.available(), 0, "nobody else holds anything meanwhile");
    drop(memory);
    assert_eq!(budget.available(), 4 * MIB);
}

#[tokio::test]
async fn gemini_an_answer_waits_for_its_gate_but_is_read_within_the_calls_timeout() {
    let fake = FakeGemini::start(fakes::GeminiConfig { small: true, ..Default::default() })
        .await
        .expect("fake gemini starts");
    let mut short = config(&fake);
    short.timeout_secs = 10; // the least allowed; the timeout also covers reading the answer
    let client = Client::new(&short).expect("client");
    let budget = MemoryBudget::new(512 * MIB);
    let gate = Arc::new(Semaphore::new(1));
    let held = gate.clone().acquire_owned().await.expect("the only permit");

    let waiting = {
        let (client, gate, budget) = (client.clone(), gate.clone(), budget.clone());
        tokio::spawn(async move {
            let mut memory = budget.empty();
            let gate = Gate { finishing: gate, memory: &mut memory, base: 0 };
            client.generate_gated(&request(LITE, "a"), Some(gate)).await
        })
    };
    fake.wait_for_requests(1, Duration::from_secs(20)).await.expect("answered");
    drop(held);
    let (reply, permit) = waiting.await.expect("call task");
    assert!(matches!(reply.outcome, Outcome::Image(_)), "{reply:?}");
    assert!(permit.is_some(), "read under the permit it waited for");

    // A gate that never opens: the answer is read anyway, before the call's timeout ends it.
    let _never = permit;
    let mut memory = budget.empty();
    let gate = Gate { finishing: gate, memory: &mut memory, base: 0 };
    let (reply, permit) = client.generate_gated(&request(LITE, "b"), Some(gate)).await;
    assert!(matches!(reply.outcome, Outcome::Image(_)), "{reply:?}");
    assert!(permit.is_none());
}

//! `env.explain()`: the plan as text, DOT and Mermaid, checked against hand-drawn plans.

#[path = "common/example_binary.rs"]
mod example_binary;

use eddy::prelude::*;

fn job() -> StreamEnvironment {
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let evens = env.from_collection((0..10u64).collect()).filter(|x| x % 2 == 0).name("evens");
    let sums = evens.key_by(|x| *x % 3).reduce(|a, b| a + b).name("sums");
    sums.rebalance().map(|x| x + 1).name("plus \"one\"").for_each(|_| {}).set_parallelism(1);
    env
}

#[test]
fn the_text_shows_chains_parallelism_and_ship_strategies() {
    let plan = job().explain().unwrap();
    let expected = "\
chain 0 (parallelism 2): Source: Collection -> evens
chain 2 (parallelism 2): sums
chain 3 (parallelism 2): plus \"one\"
chain 4 (parallelism 1): Sink: ForEach
evens --HASH--> sums
sums --REBALANCE--> plus \"one\"
plus \"one\" --REBALANCE--> Sink: ForEach
";
    assert_eq!(plan.to_string(), expected);
    assert_eq!(plan.chains(), vec![vec![0, 1], vec![2], vec![3], vec![4]]);
}

#[test]
fn dot_and_mermaid_draw_the_same_plan() {
    let plan = job().explain().unwrap();
    let dot = plan.to_dot();
    assert!(dot.starts_with("digraph job {"), "{dot}");
    assert!(dot.contains("subgraph cluster_0 {\n    label=\"chain 0\";\n    n0 [label=\"Source: Collection\\nparallelism 2\"];\n    n1 [label=\"evens\\nparallelism 2\"];\n  }"), "{dot}");
    assert!(dot.contains("n3 [label=\"plus \\\"one\\\"\\nparallelism 2\"]"), "quotes escaped: {dot}");
    assert!(dot.contains("n0 -> n1 [label=\"FORWARD\", style=bold];"), "{dot}");
    assert!(dot.contains("n1 -> n2 [label=\"HASH\", style=dashed];"), "{dot}");
    assert_eq!(dot.matches(" -> ").count(), 4);
    let mermaid = plan.to_mermaid();
    assert!(mermaid.starts_with("flowchart LR\n  subgraph chain0[\"chain 0\"]\n    n0[\"Source: Collection<br/>parallelism 2\"]\n    n1[\"evens<br/>parallelism 2\"]\n  end\n"), "{mermaid}");
    assert!(mermaid.contains("n0 ==>|\"FORWARD\"| n1"), "{mermaid}");
    assert!(mermaid.contains("n2 -.->|\"REBALANCE\"| n3"), "{mermaid}");
    assert!(mermaid.contains("plus #quot;one#quot;"), "{mermaid}");
}

#[test]
fn explaining_leaves_the_job_to_run_and_refuses_what_execute_would() {
    let env = job();
    env.explain().unwrap();
    env.execute("still runs").unwrap().wait().unwrap();
    let bad = StreamEnvironment::new();
    bad.from_collection(vec![1u64]).map(|x| x).set_parallelism(0).print();
    assert!(bad.explain().unwrap_err().to_string().contains("parallelism 0"));
}

#[test]
fn word_count_explains_its_plan_instead_of_running() {
    let binary = example_binary::path("word_count");
    let out = std::process::Command::new(&binary).args(["--explain", "--parallelism", "2"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("chain 0 (parallelism 2): Source: TextFile -> "), "{text}");
    assert!(text.contains("Window (pre-aggregate) --HASH--> Window\n"), "{text}");
    assert!(!text.contains(','), "no counts: the job did not run: {text}");
    let out = std::process::Command::new(&binary).args(["--explain", "dot"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("digraph job {"));
}

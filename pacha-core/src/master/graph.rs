//! The graph of nodes and meta nodes: expansion of a target into leaf nodes, and the meta
//! nodes whose variables a node inherits.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::master::error::{GraphError, Location};
use crate::model::node::{Definition, MetaNode, Node};
use crate::model::vars::{self, Vars};

/// Every node and meta node of a master, with the reverse edges of `include_nodes`.
#[derive(Debug, Clone, Default)]
pub struct NodeGraph {
    definitions: BTreeMap<String, Definition>,
    /// The node file of each name as shown to the user.
    files: BTreeMap<String, String>,
    /// For each name, the meta nodes that include it, in name order.
    parents: HashMap<String, Vec<String>>,
}

/// What a meta node contributes to a node's variables: merged values (outer meta nodes first)
/// and the secret values among them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InheritedVars {
    pub vars: Vars,
    pub secrets: Vec<String>,
    /// The meta nodes that include the node, outer first.
    pub metas: Vec<String>,
}

impl NodeGraph {
    /// A graph of `definitions`; `files` maps each name to its node file for error messages.
    pub fn new(definitions: BTreeMap<String, Definition>, files: BTreeMap<String, String>) -> NodeGraph {
        let mut parents: HashMap<String, Vec<String>> = HashMap::new();
        for (name, definition) in &definitions {
            if let Definition::Meta(meta) = definition {
                for child in &meta.include_nodes {
                    let list = parents.entry(child.clone()).or_default();
                    if !list.contains(name) {
                        list.push(name.clone());
                    }
                }
            }
        }
        NodeGraph {
            definitions,
            files,
            parents,
        }
    }

    /// All names, nodes and meta nodes, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.definitions.keys().map(String::as_str)
    }

    /// How many nodes and meta nodes.
    pub fn len(&self) -> usize {
        self.definitions.len()
    }

    /// Whether the master has no node file.
    pub fn is_empty(&self) -> bool {
        self.definitions.is_empty()
    }

    /// The node file of `name`, as shown to the user.
    pub fn file(&self, name: &str) -> Option<&str> {
        self.files.get(name).map(String::as_str)
    }

    /// What the node file of `name` defines (a `.conf` suffix is dropped).
    pub fn definition(&self, name: &str) -> Result<&Definition, GraphError> {
        let name = name.strip_suffix(".conf").unwrap_or(name);
        self.definitions.get(name).ok_or_else(|| GraphError::UnknownNode {
            name: name.to_owned(),
            suggestion: self.closest(name),
        })
    }

    /// The node `name`, which must not be a meta node.
    pub fn node(&self, name: &str) -> Result<&Node, GraphError> {
        match self.definition(name)? {
            Definition::Node(node) => Ok(node),
            Definition::Meta(_) => Err(GraphError::NotALeaf { name: name.to_owned() }),
        }
    }

    /// The leaf nodes of `name` (itself if it is a node): depth first in the written order,
    /// each node once, at its first place. Walked with a stack of its own, so a chain of
    /// thousands of meta nodes is no deeper for the program than a short one.
    pub fn expand(&self, name: &str) -> Result<Vec<String>, GraphError> {
        let name = name.strip_suffix(".conf").unwrap_or(name);
        let mut walk = Expansion::default();
        let Some(definition) = self.definitions.get(name) else {
            return Err(GraphError::UnknownNode {
                name: name.to_owned(),
                suggestion: self.closest(name),
            });
        };
        // The meta nodes being expanded, outer first, with the next include to visit.
        let mut frames: Vec<(&str, &MetaNode, usize)> = Vec::new();
        match definition {
            Definition::Node(_) => walk.leaves.push(name.to_owned()),
            Definition::Meta(meta) => {
                walk.enter(name);
                frames.push((name, meta, 0));
            }
        }
        while let Some((meta_name, meta, next)) = frames.last_mut() {
            let (meta_name, meta) = (*meta_name, *meta);
            let Some(child) = meta.include_nodes.get(*next) else {
                walk.leave(meta_name);
                frames.pop();
                continue;
            };
            let index = *next;
            *next += 1;
            match self.definitions.get(child.as_str()) {
                None => {
                    return Err(GraphError::MissingInclude {
                        at: Location::line(
                            self.files.get(meta_name).cloned().unwrap_or_default(),
                            meta.include_lines.get(index).copied().flatten(),
                        ),
                        meta: meta_name.to_owned(),
                        name: child.clone(),
                        suggestion: self.closest(child),
                    });
                }
                Some(Definition::Node(_)) => {
                    if walk.seen.insert(child.clone()) {
                        walk.leaves.push(child.clone());
                    }
                }
                Some(Definition::Meta(inner)) => {
                    if walk.on_stack.contains(child.as_str()) {
                        let start = walk.stack.iter().position(|entry| entry == child).unwrap_or(0);
                        let mut cycle = walk.stack[start..].to_vec();
                        cycle.push(child.clone());
                        return Err(GraphError::Cycle { cycle });
                    }
                    if walk.expanded.contains(child.as_str()) {
                        continue;
                    }
                    walk.enter(child);
                    frames.push((child.as_str(), inner, 0));
                }
            }
        }
        Ok(walk.leaves)
    }

    /// The variables node `name` inherits from every meta node that includes it, directly or
    /// through nested meta nodes. An inner meta node overrides the ones that include it; two
    /// unrelated meta nodes that disagree on a variable the node does not set itself are an
    /// error. `node_sets` tells whether the node (or its state) sets a dotted variable path.
    pub fn inherited_vars(
        &self,
        name: &str,
        state: &str,
        node_sets: &dyn Fn(&str) -> bool,
    ) -> Result<InheritedVars, GraphError> {
        let above = self.metas_above(name);
        if above.is_empty() {
            return Ok(InheritedVars::default());
        }
        // Rank = longest chain of meta nodes above; it orders outer before inner, and finding
        // it finds any cycle among the meta nodes.
        let mut ranks: HashMap<&str, usize> = HashMap::new();
        for meta in &above {
            self.rank(meta, &mut ranks)?;
        }
        let mut ordered: Vec<&str> = above.iter().map(String::as_str).collect();
        ordered.sort_by_key(|meta| (ranks[meta], *meta));

        let metas: Vec<(&str, &MetaNode)> = ordered
            .iter()
            .filter_map(|name| match self.definitions.get(*name) {
                Some(Definition::Meta(meta)) => Some((*name, &**meta)),
                _ => None,
            })
            .collect();
        // What each meta node sets in this state: its vars, its block for the state over them.
        let effective: Vec<Vars> = metas
            .iter()
            .map(|(_, meta)| {
                let mut merged = meta.vars.clone();
                if let Some(block) = meta.states.get(state) {
                    vars::merge(&mut merged, &block.vars);
                }
                merged
            })
            .collect();
        let mut setters: BTreeMap<String, Vec<(&str, &serde_json::Value)>> = BTreeMap::new();
        for ((meta_name, _), meta_vars) in metas.iter().zip(&effective) {
            for (path, value) in vars::leaves(meta_vars) {
                setters.entry(path).or_default().push((meta_name, value));
            }
        }
        for (path, set_by) in &setters {
            if set_by.len() < 2 || node_sets(path) {
                continue;
            }
            // A setter is innermost unless it is above another setter.
            let above_setters = self.metas_above_all(set_by.iter().map(|(meta, _)| *meta));
            let innermost: Vec<&(&str, &serde_json::Value)> = set_by
                .iter()
                .filter(|(meta, _)| !above_setters.contains(*meta))
                .collect();
            if let Some((first, first_value)) = innermost.first()
                && let Some((second, second_value)) = innermost.iter().find(|(_, value)| value != first_value)
            {
                // A secret's value is never part of a message.
                let secret_values: Vec<&String> = metas.iter().flat_map(|(_, meta)| &meta.secret_values).collect();
                let shown = |value: &serde_json::Value| {
                    let mut values = Vec::new();
                    vars::collect_secret_values(value, &mut values);
                    if values.iter().any(|value| secret_values.contains(&value)) {
                        "<redacted>".to_owned()
                    } else {
                        vars::describe(value)
                    }
                };
                return Err(GraphError::VarConflict {
                    node: name.to_owned(),
                    variable: path.clone(),
                    first: (*first).to_owned(),
                    first_value: shown(first_value),
                    second: (*second).to_owned(),
                    second_value: shown(second_value),
                });
            }
        }
        let mut inherited = InheritedVars::default();
        for ((meta_name, meta), meta_vars) in metas.iter().zip(&effective) {
            vars::merge(&mut inherited.vars, meta_vars);
            inherited.secrets.extend(meta.secret_values.iter().cloned());
            inherited.metas.push((*meta_name).to_owned());
        }
        Ok(inherited)
    }

    /// Every meta node strictly above any of `names`, in one walk.
    fn metas_above_all<'a>(&self, names: impl Iterator<Item = &'a str>) -> HashSet<String> {
        let mut found = HashSet::new();
        let mut queue: Vec<String> = names.map(str::to_owned).collect();
        while let Some(current) = queue.pop() {
            for parent in self.parents.get(&current).into_iter().flatten() {
                if found.insert(parent.clone()) {
                    queue.push(parent.clone());
                }
            }
        }
        found
    }

    /// Every meta node that reaches `name`.
    fn metas_above(&self, name: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        let mut queue = vec![name.to_owned()];
        while let Some(current) = queue.pop() {
            for parent in self.parents.get(&current).into_iter().flatten() {
                if found.insert(parent.clone()) {
                    queue.push(parent.clone());
                }
            }
        }
        found
    }

    /// The longest chain of meta nodes above `start` (0 when none includes it), computed for
    /// it and every meta node above it into `ranks`; finding it finds any cycle among them.
    /// Walked with a stack of its own, however long the chain.
    fn rank<'a>(&'a self, start: &'a str, ranks: &mut HashMap<&'a str, usize>) -> Result<usize, GraphError> {
        if let Some(rank) = ranks.get(start) {
            return Ok(*rank);
        }
        // Inner to outer: each name with the index of its next parent to visit.
        let mut stack: Vec<(&'a str, usize)> = vec![(start, 0)];
        let mut on_stack: HashSet<&'a str> = HashSet::from([start]);
        while let Some((name, next)) = stack.last_mut() {
            let name: &'a str = name;
            let parents: &'a [String] = self.parents.get(name).map_or(&[], Vec::as_slice);
            if let Some(parent) = parents.get(*next) {
                *next += 1;
                let parent = parent.as_str();
                if ranks.contains_key(parent) {
                    continue;
                }
                if on_stack.contains(parent) {
                    // The stack runs from inner to outer; a cycle reads better outer to inner.
                    let at = stack.iter().position(|(entry, _)| *entry == parent).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        stack[at..].iter().rev().map(|(entry, _)| (*entry).to_owned()).collect();
                    cycle.push(cycle[0].clone());
                    return Err(GraphError::Cycle { cycle });
                }
                on_stack.insert(parent);
                stack.push((parent, 0));
                continue;
            }
            let rank = parents
                .iter()
                .map(|parent| ranks.get(parent.as_str()).map_or(0, |rank| rank + 1))
                .max()
                .unwrap_or(0);
            ranks.insert(name, rank);
            on_stack.remove(name);
            stack.pop();
        }
        Ok(ranks.get(start).copied().unwrap_or(0))
    }

    /// The known name closest to `name`, when one is close enough to be a typo.
    fn closest(&self, name: &str) -> Option<String> {
        closest(name, self.definitions.keys().map(String::as_str))
    }
}

/// The candidate closest to `name`, when one is close enough to be a typo of it.
pub(crate) fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    candidates
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4) && *distance > 0)
        .min()
        .map(|(_, candidate)| candidate.to_owned())
}

#[derive(Default)]
struct Expansion {
    leaves: Vec<String>,
    seen: HashSet<String>,
    expanded: HashSet<String>,
    /// The meta nodes being expanded, outer first (for the cycle message), and as a set.
    stack: Vec<String>,
    on_stack: HashSet<String>,
}

impl Expansion {
    fn enter(&mut self, meta: &str) {
        self.stack.push(meta.to_owned());
        self.on_stack.insert(meta.to_owned());
    }

    fn leave(&mut self, meta: &str) {
        self.stack.pop();
        self.on_stack.remove(meta);
        self.expanded.insert(meta.to_owned());
    }
}

/// Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`: `wbe1` is one
/// from `web1`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut before: Vec<usize> = Vec::new();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for i in 0..a.len() {
        let mut current = vec![i + 1];
        for j in 0..b.len() {
            let cost = usize::from(a[i] != b[j]);
            let mut best = (previous[j] + cost).min(previous[j + 1] + 1).min(current[j] + 1);
            if i > 0 && j > 0 && a[i] == b[j - 1] && a[i - 1] == b[j] {
                best = best.min(before[j - 1] + 1);
            }
            current.push(best);
        }
        before = std::mem::replace(&mut previous, current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_swapped_pair_of_letters_is_one_edit() {
        assert_eq!(edit_distance("wbe1", "web1"), 1);
        assert_eq!(edit_distance("web1", "web1"), 0);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(
            closest("wbe1", ["web", "web1", "web2"].into_iter()).as_deref(),
            Some("web1")
        );
        assert_eq!(closest("zzzz", ["web1"].into_iter()), None);
    }

    fn meta(include: &[&str], vars: serde_json::Value) -> Definition {
        Definition::Meta(Box::new(MetaNode {
            include_nodes: include.iter().map(|s| (*s).to_owned()).collect(),
            vars: vars.as_object().cloned().unwrap_or_default(),
            ..MetaNode::default()
        }))
    }

    fn leaf() -> Definition {
        Definition::Node(Box::default())
    }

    fn graph(entries: Vec<(&str, Definition)>) -> NodeGraph {
        let files = entries
            .iter()
            .map(|(n, _)| ((*n).to_owned(), format!("nodes/{n}/{n}.conf")))
            .collect();
        NodeGraph::new(entries.into_iter().map(|(n, d)| (n.to_owned(), d)).collect(), files)
    }

    #[test]
    fn expands_depth_first_in_order_once() {
        let g = graph(vec![
            ("all", meta(&["web", "db1", "web1"], json!({}))),
            ("web", meta(&["web2", "web1", "inner"], json!({}))),
            ("inner", meta(&["web3", "web2"], json!({}))),
            ("web1", leaf()),
            ("web2", leaf()),
            ("web3", leaf()),
            ("db1", leaf()),
        ]);
        assert_eq!(g.expand("all").unwrap(), ["web2", "web1", "web3", "db1"]);
        assert_eq!(g.expand("web1").unwrap(), ["web1"]);
    }

    #[test]
    fn cycle_names_the_whole_cycle() {
        let g = graph(vec![
            ("a", meta(&["n", "b"], json!({}))),
            ("b", meta(&["c"], json!({}))),
            ("c", meta(&["a"], json!({}))),
            ("n", leaf()),
        ]);
        assert_eq!(
            g.expand("a").unwrap_err().to_string(),
            "meta nodes include each other in a cycle: a -> b -> c -> a"
        );
    }

    #[test]
    fn missing_include_names_meta_and_suggests() {
        let g = graph(vec![
            ("m", meta(&["web1", "webb2"], json!({}))),
            ("web1", leaf()),
            ("web2", leaf()),
        ]);
        assert_eq!(
            g.expand("m").unwrap_err().to_string(),
            "nodes/m/m.conf: meta node \"m\" includes \"webb2\", but there is no nodes/webb2/webb2.conf (did you mean \"web2\"?)"
        );
    }

    #[test]
    fn inner_meta_overrides_outer_and_node_is_reached_however_pushed() {
        let g = graph(vec![
            (
                "all",
                meta(&["web"], json!({"port": 80, "tier": "x", "deep": {"a": 1, "b": 1}})),
            ),
            ("web", meta(&["web1"], json!({"port": 8080, "deep": {"b": 2}}))),
            ("web1", leaf()),
        ]);
        let inherited = g.inherited_vars("web1", "default", &|_| false).unwrap();
        assert_eq!(
            serde_json::Value::Object(inherited.vars),
            json!({"port": 8080, "tier": "x", "deep": {"a": 1, "b": 2}})
        );
        assert_eq!(inherited.metas, ["all", "web"]);
    }

    #[test]
    fn unrelated_metas_that_disagree_are_an_error_unless_the_node_decides() {
        let g = graph(vec![
            ("web", meta(&["web1"], json!({"port": 80, "same": 1}))),
            ("dmz", meta(&["web1"], json!({"port": 8080, "same": 1}))),
            ("web1", leaf()),
        ]);
        let err = g.inherited_vars("web1", "default", &|_| false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "node \"web1\" inherits variable `port` from two meta nodes that disagree: \"dmz\" sets 8080, \"web\" sets 80; set `port` in nodes/web1/web1.conf to choose"
        );
        assert!(g.inherited_vars("web1", "default", &|path| path == "port").is_ok());
    }

    #[test]
    fn a_conflict_between_secrets_names_no_value() {
        let secret_meta = |include: &[&str], value: &str| {
            let Definition::Meta(mut meta) = meta(include, json!({ "token": value })) else {
                unreachable!()
            };
            meta.secret_values = vec![value.to_owned()];
            Definition::Meta(meta)
        };
        let g = graph(vec![
            ("a", secret_meta(&["n"], "s3cret-one")),
            ("b", secret_meta(&["n"], "s3cret-two")),
            ("n", leaf()),
        ]);
        let err = g.inherited_vars("n", "default", &|_| false).unwrap_err().to_string();
        assert!(err.contains("<redacted>") && !err.contains("s3cret"), "{err}");
    }

    #[test]
    fn a_common_inner_meta_settles_a_disagreement() {
        let g = graph(vec![
            ("a", meta(&["m"], json!({"port": 1}))),
            ("b", meta(&["m"], json!({"port": 2}))),
            ("m", meta(&["n"], json!({"port": 3}))),
            ("n", leaf()),
        ]);
        let inherited = g.inherited_vars("n", "default", &|_| false).unwrap();
        assert_eq!(inherited.vars["port"], 3);
    }

    /// A chain of thousands of meta nodes expands and inherits without deep recursion.
    #[test]
    fn a_chain_of_five_thousand_meta_nodes_expands() {
        let depth = 5000;
        let mut entries: Vec<(String, Definition)> = (0..depth)
            .map(|i| {
                let child = if i + 1 == depth {
                    "leaf".to_owned()
                } else {
                    format!("m{}", i + 1)
                };
                (format!("m{i}"), meta(&[child.as_str()], json!({"level": i})))
            })
            .collect();
        entries.push(("leaf".to_owned(), leaf()));
        let files = entries
            .iter()
            .map(|(n, _)| (n.clone(), format!("nodes/{n}/{n}.conf")))
            .collect();
        let g = NodeGraph::new(entries.into_iter().collect(), files);
        assert_eq!(g.expand("m0").unwrap(), ["leaf"]);
        let inherited = g.inherited_vars("leaf", "default", &|_| false).unwrap();
        assert_eq!(inherited.vars["level"], depth - 1, "the innermost meta node wins");
    }

    #[test]
    fn cycle_above_a_node_is_an_error() {
        let g = graph(vec![
            ("a", meta(&["b", "n"], json!({}))),
            ("b", meta(&["a"], json!({}))),
            ("n", leaf()),
        ]);
        assert!(matches!(
            g.inherited_vars("n", "default", &|_| false),
            Err(GraphError::Cycle { .. })
        ));
    }

    /// A random graph: `metas` meta nodes and `leaves` nodes, each meta including random names.
    fn random_graph() -> impl Strategy<Value = (NodeGraph, Vec<String>)> {
        (1usize..6, 1usize..6).prop_flat_map(|(metas, leaves)| {
            let names: Vec<String> = (0..metas)
                .map(|i| format!("m{i}"))
                .chain((0..leaves).map(|i| format!("n{i}")))
                .collect();
            let count = names.len();
            prop::collection::vec(prop::collection::vec(0..count, 0..5), metas).prop_map(move |includes| {
                let mut definitions = BTreeMap::new();
                for (i, children) in includes.iter().enumerate() {
                    let include_nodes: Vec<String> = children.iter().map(|c| names[*c].clone()).collect();
                    definitions.insert(
                        names[i].clone(),
                        Definition::Meta(Box::new(MetaNode {
                            include_nodes,
                            ..MetaNode::default()
                        })),
                    );
                }
                for name in &names[metas..] {
                    definitions.insert(name.clone(), Definition::Node(Box::default()));
                }
                (NodeGraph::new(definitions, BTreeMap::new()), names.clone())
            })
        })
    }

    /// A random acyclic graph: meta `m{i}` includes only metas of a higher index and leaves,
    /// and may set `x` to 1 or 2.
    fn layered_graph() -> impl Strategy<Value = (NodeGraph, Vec<String>)> {
        (1usize..6, 1usize..4).prop_flat_map(|(metas, leaves)| {
            let spec = prop::collection::vec(
                (
                    prop::collection::vec(any::<bool>(), metas + leaves),
                    prop::option::of(1u8..3),
                ),
                metas,
            );
            spec.prop_map(move |spec| {
                let leaf_names: Vec<String> = (0..leaves).map(|i| format!("n{i}")).collect();
                let mut definitions = BTreeMap::new();
                for (i, (includes, x)) in spec.iter().enumerate() {
                    let include_nodes: Vec<String> = includes
                        .iter()
                        .enumerate()
                        .filter(|(j, included)| **included && (*j >= metas || *j > i))
                        .map(|(j, _)| {
                            if j < metas {
                                format!("m{j}")
                            } else {
                                leaf_names[j - metas].clone()
                            }
                        })
                        .collect();
                    let vars = x.map_or_else(|| json!({}), |x| json!({"x": x}));
                    definitions.insert(format!("m{i}"), meta_owned(include_nodes, vars));
                }
                for name in &leaf_names {
                    definitions.insert(name.clone(), leaf());
                }
                (NodeGraph::new(definitions, BTreeMap::new()), leaf_names)
            })
        })
    }

    fn meta_owned(include_nodes: Vec<String>, vars: serde_json::Value) -> Definition {
        Definition::Meta(Box::new(MetaNode {
            include_nodes,
            vars: vars.as_object().cloned().unwrap_or_default(),
            ..MetaNode::default()
        }))
    }

    /// Reference: all leaves reachable from `name` in written order, by a plain recursive walk
    /// that gives up on cycles.
    fn reference(g: &NodeGraph, name: &str, stack: &mut Vec<String>, out: &mut Vec<String>) -> bool {
        match &g.definitions[name] {
            Definition::Node(_) => {
                if !out.iter().any(|n| n == name) {
                    out.push(name.to_owned());
                }
                true
            }
            Definition::Meta(meta) => {
                if stack.iter().any(|s| s == name) {
                    return false;
                }
                stack.push(name.to_owned());
                let ok = meta.include_nodes.iter().all(|child| reference(g, child, stack, out));
                stack.pop();
                ok
            }
        }
    }

    proptest! {
        #[test]
        fn expansion_matches_reference((g, names) in random_graph()) {
            for name in &names {
                let mut expected = Vec::new();
                let acyclic = reference(&g, name, &mut Vec::new(), &mut expected);
                match g.expand(name) {
                    Ok(leaves) => {
                        prop_assert!(acyclic, "{name}: a cycle was missed");
                        prop_assert_eq!(leaves, expected);
                    }
                    Err(GraphError::Cycle { cycle }) => {
                        prop_assert!(!acyclic, "{name}: false cycle {cycle:?}");
                        prop_assert_eq!(cycle.first(), cycle.last());
                        for pair in cycle.windows(2) {
                            let Definition::Meta(meta) = &g.definitions[&pair[0]] else { panic!() };
                            prop_assert!(meta.include_nodes.contains(&pair[1]));
                        }
                    }
                    Err(other) => prop_assert!(false, "{other}"),
                }
            }
        }

        /// Against a reference: a node gets the value of the innermost meta nodes that set
        /// `x` (inner beats outer); two innermost setters that disagree are a conflict exactly
        /// then, and never when the node sets `x` itself; and nothing depends on the order in
        /// which meta nodes list what they include.
        #[test]
        fn inherited_vars_follow_inner_over_outer((g, leaves) in layered_graph()) {
            let mut reversed = g.clone();
            for definition in reversed.definitions.values_mut() {
                if let Definition::Meta(meta) = definition {
                    meta.include_nodes.reverse();
                }
            }
            let reversed = NodeGraph::new(reversed.definitions, BTreeMap::new());
            for leaf in &leaves {
                let above = g.metas_above(leaf);
                let setters: Vec<&String> = above
                    .iter()
                    .filter(|meta| matches!(&g.definitions[*meta], Definition::Meta(m) if m.vars.contains_key("x")))
                    .collect();
                let innermost: Vec<&String> = setters
                    .iter()
                    .filter(|outer| !setters.iter().any(|inner| inner != *outer && g.metas_above(inner).contains(**outer)))
                    .copied()
                    .collect();
                let values: BTreeSet<String> = innermost
                    .iter()
                    .map(|meta| match &g.definitions[*meta] {
                        Definition::Meta(m) => m.vars["x"].to_string(),
                        Definition::Node(_) => unreachable!(),
                    })
                    .collect();
                let result = g.inherited_vars(leaf, "default", &|_| false);
                match values.len() {
                    0 => prop_assert!(!result.unwrap().vars.contains_key("x")),
                    1 => prop_assert_eq!(
                        result.unwrap().vars["x"].to_string(),
                        values.iter().next().unwrap().clone()
                    ),
                    _ => {
                        let is_conflict = matches!(result, Err(GraphError::VarConflict { .. }));
                        prop_assert!(is_conflict);
                        prop_assert!(g.inherited_vars(leaf, "default", &|path| path == "x").is_ok());
                    }
                }
                let again = reversed.inherited_vars(leaf, "default", &|_| false).map(|inherited| inherited.vars);
                let first = g.inherited_vars(leaf, "default", &|_| false).map(|inherited| inherited.vars);
                prop_assert_eq!(first.ok(), again.ok());
            }
        }
    }
}

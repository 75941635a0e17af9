//! Shared-memory bank conflicts without a GPU: the generated FlashAttention-2 kernels are
//! parsed by naga, and a small interpreter of naga's IR runs one warp (32 lanes) through the
//! kernel's fast path (every loop once, the uniforms set so that every lane has work: a
//! full tile, the first chunk), evaluating the address of every workgroup-memory load and
//! store per lane from the generated index expressions.
//!
//! Model (NVIDIA's, and most GPUs'): 32 banks of 4-byte words; a warp's access takes as many
//! passes as the largest number of distinct words any one bank serves (lanes reading the
//! same word share it); the fewest possible is ceil(distinct words / 32) (4 for a vec4 per
//! lane). Each access counts passes / fewest; a kernel's figure is the mean over the accesses
//! the warp executes (every access once per trip through the fast path, two warps).

use std::collections::{HashMap, HashSet};

use attnflow::gpu::codegen::{AttentionKernel, Profile, Target, Variant};
use wgpu::naga;

use naga::{
    AddressSpace, BinaryOperator, Expression, Handle, Literal, MathFunction, ScalarKind, Statement,
    TypeInner, UnaryOperator,
};

const LANES: usize = 32;
const BANKS: u32 = 32;

#[derive(Clone, Debug, PartialEq)]
enum V {
    U(u32),
    I(i32),
    F(f32),
    B(bool),
    Vec(Vec<V>),
    Ptr(Root, Vec<u32>),
    Nothing,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Root {
    Local(Handle<naga::LocalVariable>),
    Global(Handle<naga::GlobalVariable>),
}

impl V {
    fn u(&self) -> u32 {
        match self {
            V::U(x) => *x,
            V::I(x) => *x as u32,
            V::B(b) => *b as u32,
            V::F(f) => *f as u32,
            other => panic!("not an integer: {other:?}"),
        }
    }
    fn b(&self) -> bool {
        match self {
            V::B(b) => *b,
            other => panic!("not a bool: {other:?}"),
        }
    }
}

/// One warp access of workgroup memory: the variable and its passes and fewest passes.
#[derive(Debug, Clone)]
struct Access {
    variable: String,
    store: bool,
    passes: u32,
    fewest: u32,
}

struct Machine<'a> {
    module: &'a naga::Module,
    function: &'a naga::Function,
    lane0: u32,
    /// Per lane: the expressions' values at their last evaluation, and the local variables.
    values: Vec<HashMap<Handle<Expression>, V>>,
    locals: Vec<HashMap<Handle<naga::LocalVariable>, V>>,
    accesses: Vec<Access>,
}

fn zero(module: &naga::Module, ty: Handle<naga::Type>) -> V {
    match &module.types[ty].inner {
        TypeInner::Scalar(s) => scalar_zero(s.kind),
        TypeInner::Vector { size, scalar } => {
            V::Vec(vec![scalar_zero(scalar.kind); *size as usize])
        }
        TypeInner::Array { base, size, .. } => {
            let n = match size {
                naga::ArraySize::Constant(n) => n.get() as usize,
                _ => 0,
            };
            V::Vec(vec![zero(module, *base); n])
        }
        TypeInner::Struct { members, .. } => {
            V::Vec(members.iter().map(|m| zero(module, m.ty)).collect())
        }
        _ => V::Nothing,
    }
}

fn scalar_zero(kind: ScalarKind) -> V {
    match kind {
        ScalarKind::Uint => V::U(0),
        ScalarKind::Sint => V::I(0),
        ScalarKind::Float | ScalarKind::AbstractFloat => V::F(0.0),
        ScalarKind::Bool => V::B(false),
        ScalarKind::AbstractInt => V::I(0),
    }
}

/// The uniforms of one dispatch in which every lane has a full tile of keys: a large n, one
/// split, the first chunk.
fn uniform_member(name: &str) -> V {
    match name {
        "n_queries" | "n_keys" | "split_keys" | "key_count" => V::U(1 << 20),
        "batch" | "splits" | "first" | "groups_x" => V::U(1),
        "alibi_slope" | "output_scale" => V::F(0.0),
        _ => V::U(0),
    }
}

fn binary(op: BinaryOperator, a: &V, b: &V) -> V {
    use BinaryOperator as O;
    match (a, b) {
        (V::Vec(x), V::Vec(y)) => V::Vec(x.iter().zip(y).map(|(a, b)| binary(op, a, b)).collect()),
        (V::Vec(x), s) => V::Vec(x.iter().map(|a| binary(op, a, s)).collect()),
        (s, V::Vec(y)) => V::Vec(y.iter().map(|b| binary(op, s, b)).collect()),
        (V::U(x), V::U(y)) => {
            let (x, y) = (*x, *y);
            match op {
                O::Add => V::U(x.wrapping_add(y)),
                O::Subtract => V::U(x.wrapping_sub(y)),
                O::Multiply => V::U(x.wrapping_mul(y)),
                O::Divide => V::U(x.checked_div(y).unwrap_or(0)),
                O::Modulo => V::U(x.checked_rem(y).unwrap_or(0)),
                O::And => V::U(x & y),
                O::InclusiveOr => V::U(x | y),
                O::ExclusiveOr => V::U(x ^ y),
                O::ShiftLeft => V::U(x.wrapping_shl(y)),
                O::ShiftRight => V::U(x.wrapping_shr(y)),
                O::Equal => V::B(x == y),
                O::NotEqual => V::B(x != y),
                O::Less => V::B(x < y),
                O::LessEqual => V::B(x <= y),
                O::Greater => V::B(x > y),
                O::GreaterEqual => V::B(x >= y),
                _ => panic!("{op:?} on u32"),
            }
        }
        (V::I(x), V::I(y)) => {
            let (x, y) = (*x, *y);
            match op {
                O::Add => V::I(x.wrapping_add(y)),
                O::Subtract => V::I(x.wrapping_sub(y)),
                O::Multiply => V::I(x.wrapping_mul(y)),
                O::Divide => V::I(x.checked_div(y).unwrap_or(0)),
                O::Modulo => V::I(x.checked_rem(y).unwrap_or(0)),
                O::Equal => V::B(x == y),
                O::NotEqual => V::B(x != y),
                O::Less => V::B(x < y),
                O::LessEqual => V::B(x <= y),
                O::Greater => V::B(x > y),
                O::GreaterEqual => V::B(x >= y),
                _ => panic!("{op:?} on i32"),
            }
        }
        (V::U(_), V::I(_)) | (V::I(_), V::U(_)) => binary(op, &V::U(a.u()), &V::U(b.u())),
        (V::F(x), V::F(y)) => {
            let (x, y) = (*x, *y);
            match op {
                O::Add => V::F(x + y),
                O::Subtract => V::F(x - y),
                O::Multiply => V::F(x * y),
                O::Divide => V::F(x / y),
                O::Modulo => V::F(x % y),
                O::Equal => V::B(x == y),
                O::NotEqual => V::B(x != y),
                O::Less => V::B(x < y),
                O::LessEqual => V::B(x <= y),
                O::Greater => V::B(x > y),
                O::GreaterEqual => V::B(x >= y),
                _ => panic!("{op:?} on f32"),
            }
        }
        (V::B(x), V::B(y)) => match op {
            O::LogicalAnd | O::And => V::B(*x && *y),
            O::LogicalOr | O::InclusiveOr => V::B(*x || *y),
            O::Equal => V::B(x == y),
            O::NotEqual => V::B(x != y),
            _ => panic!("{op:?} on bool"),
        },
        _ => panic!("{op:?} on {a:?}, {b:?}"),
    }
}

fn map1(v: &V, f: &dyn Fn(&V) -> V) -> V {
    match v {
        V::Vec(x) => V::Vec(x.iter().map(|a| map1(a, f)).collect()),
        s => f(s),
    }
}

fn float(v: &V) -> f32 {
    match v {
        V::F(f) => *f,
        V::U(u) => *u as f32,
        V::I(i) => *i as f32,
        other => panic!("not a number: {other:?}"),
    }
}

impl<'a> Machine<'a> {
    fn new(module: &'a naga::Module, lane0: u32) -> Self {
        let function = &module.entry_points[0].function;
        Machine {
            module,
            function,
            lane0,
            values: vec![HashMap::new(); LANES],
            locals: vec![HashMap::new(); LANES],
            accesses: Vec::new(),
        }
    }

    fn constant(&self, h: Handle<naga::Constant>) -> V {
        let c = &self.module.constants[h];
        self.global_expression(c.init)
    }

    fn global_expression(&self, h: Handle<Expression>) -> V {
        match &self.module.global_expressions[h] {
            Expression::Literal(l) => literal(l),
            Expression::Constant(c) => self.constant(*c),
            Expression::ZeroValue(ty) => zero(self.module, *ty),
            Expression::Compose { components, .. } => V::Vec(
                components
                    .iter()
                    .map(|c| self.global_expression(*c))
                    .collect(),
            ),
            Expression::Binary { op, left, right } => binary(
                *op,
                &self.global_expression(*left),
                &self.global_expression(*right),
            ),
            Expression::Unary { op, expr } => unary(*op, &self.global_expression(*expr)),
            other => panic!("global expression {other:?}"),
        }
    }

    /// Reads through a pointer of lane `l`.
    fn load(&mut self, l: usize, pointer: &V) -> V {
        let V::Ptr(root, path) = pointer else {
            panic!("load through {pointer:?}")
        };
        match root {
            Root::Local(h) => {
                let mut v = self.locals[l]
                    .get(h)
                    .cloned()
                    .unwrap_or_else(|| zero(self.module, self.function.local_variables[*h].ty));
                for &i in path {
                    v = match v {
                        V::Vec(mut x) => x.swap_remove(i as usize),
                        other => panic!("index {i} into {other:?}"),
                    };
                }
                v
            }
            Root::Global(g) => {
                let var = &self.module.global_variables[*g];
                let mut ty = var.ty;
                let mut member = None;
                for &i in path {
                    ty = match &self.module.types[ty].inner {
                        TypeInner::Array { base, .. } => *base,
                        TypeInner::Struct { members, .. } => {
                            member = members[i as usize].name.clone();
                            members[i as usize].ty
                        }
                        TypeInner::Vector { scalar, .. } => {
                            return scalar_zero(scalar.kind);
                        }
                        other => panic!("index into {other:?}"),
                    };
                }
                match (var.space, member) {
                    (AddressSpace::Uniform, Some(name)) => uniform_member(&name),
                    _ => zero(self.module, ty),
                }
            }
        }
    }

    fn store_local(&mut self, l: usize, h: Handle<naga::LocalVariable>, path: &[u32], value: V) {
        let ty = self.function.local_variables[h].ty;
        let module = self.module;
        let slot = self.locals[l].entry(h).or_insert_with(|| zero(module, ty));
        let mut at = slot;
        for &i in path {
            at = match at {
                V::Vec(x) => &mut x[i as usize],
                other => panic!("index {i} into {other:?}"),
            };
        }
        *at = value;
    }

    /// Records a warp's access of workgroup memory, if `pointers` (per active lane) point
    /// there.
    fn record(&mut self, pointers: &[(usize, V)], store: bool) {
        let mut words = Vec::new();
        let mut variable = None;
        for (_, p) in pointers {
            let V::Ptr(Root::Global(g), path) = p else {
                return;
            };
            let var = &self.module.global_variables[*g];
            if var.space != AddressSpace::WorkGroup {
                return;
            }
            variable = var.name.clone();
            let TypeInner::Array { base, .. } = &self.module.types[var.ty].inner else {
                panic!("workgroup variable of another type")
            };
            let width = match &self.module.types[*base].inner {
                TypeInner::Scalar(_) => 1,
                TypeInner::Vector { size, .. } => *size as u32,
                other => panic!("workgroup array of {other:?}"),
            };
            let (start, n) = match path.as_slice() {
                [i] => (i * width, width),
                [i, c] => (i * width + c, 1),
                other => panic!("workgroup access path {other:?}"),
            };
            words.extend(start..start + n);
        }
        let distinct: HashSet<u32> = words.into_iter().collect();
        if distinct.is_empty() {
            return;
        }
        let mut per_bank = [0u32; BANKS as usize];
        for w in &distinct {
            per_bank[(w % BANKS) as usize] += 1;
        }
        self.accesses.push(Access {
            variable: variable.unwrap_or_default(),
            store,
            passes: *per_bank.iter().max().expect("banks"),
            fewest: (distinct.len() as u32).div_ceil(BANKS),
        });
    }

    fn eval(&mut self, l: usize, h: Handle<Expression>) -> V {
        if let Some(v) = self.values[l].get(&h) {
            return v.clone();
        }
        let v = self.compute(l, h);
        self.values[l].insert(h, v.clone());
        v
    }

    fn compute(&mut self, l: usize, h: Handle<Expression>) -> V {
        let f = self.function;
        match &f.expressions[h] {
            Expression::Literal(lit) => literal(lit),
            Expression::Constant(c) => self.constant(*c),
            Expression::ZeroValue(ty) => zero(self.module, *ty),
            Expression::Compose { components, .. } => {
                let mut out = Vec::new();
                for c in components {
                    match self.eval(l, *c) {
                        V::Vec(x) => out.extend(x),
                        s => out.push(s),
                    }
                }
                V::Vec(out)
            }
            Expression::Access { base, index } => {
                let i = self.eval(l, *index).u();
                self.index(l, *base, i)
            }
            Expression::AccessIndex { base, index } => self.index(l, *base, *index),
            Expression::Splat { size, value } => V::Vec(vec![self.eval(l, *value); *size as usize]),
            Expression::Swizzle {
                size,
                vector,
                pattern,
            } => {
                let V::Vec(x) = self.eval(l, *vector) else {
                    panic!("swizzle of a scalar")
                };
                V::Vec(
                    pattern[..*size as usize]
                        .iter()
                        .map(|c| x[*c as usize].clone())
                        .collect(),
                )
            }
            Expression::FunctionArgument(i) => {
                let arg = &f.arguments[*i as usize];
                let lane = self.lane0 + l as u32;
                match arg.binding {
                    Some(naga::Binding::BuiltIn(naga::BuiltIn::LocalInvocationId)) => {
                        V::Vec(vec![V::U(lane), V::U(0), V::U(0)])
                    }
                    Some(naga::Binding::BuiltIn(naga::BuiltIn::LocalInvocationIndex)) => V::U(lane),
                    _ => zero(self.module, arg.ty),
                }
            }
            Expression::GlobalVariable(g) => V::Ptr(Root::Global(*g), Vec::new()),
            Expression::LocalVariable(v) => V::Ptr(Root::Local(*v), Vec::new()),
            Expression::Load { pointer } => {
                let p = self.eval(l, *pointer);
                self.load(l, &p)
            }
            Expression::Unary { op, expr } => unary(*op, &self.eval(l, *expr)),
            Expression::Binary { op, left, right } => {
                let (a, b) = (self.eval(l, *left), self.eval(l, *right));
                binary(*op, &a, &b)
            }
            Expression::Select {
                condition,
                accept,
                reject,
            } => {
                let c = self.eval(l, *condition);
                let (a, r) = (self.eval(l, *accept), self.eval(l, *reject));
                match c {
                    V::B(true) => a,
                    V::B(false) => r,
                    other => panic!("select on {other:?}"),
                }
            }
            Expression::Math {
                fun,
                arg,
                arg1,
                arg2,
                ..
            } => {
                let a = self.eval(l, *arg);
                let b = arg1.map(|x| self.eval(l, x));
                let c = arg2.map(|x| self.eval(l, x));
                math(*fun, a, b, c)
            }
            Expression::As {
                expr,
                kind,
                convert,
            } => {
                let v = self.eval(l, *expr);
                assert!(convert.is_some(), "bitcasts are not modelled");
                map1(&v, &|s| match kind {
                    ScalarKind::Uint => V::U(match s {
                        V::F(f) => *f as u32,
                        other => other.u(),
                    }),
                    ScalarKind::Sint => V::I(match s {
                        V::F(f) => *f as i32,
                        other => other.u() as i32,
                    }),
                    ScalarKind::Float => V::F(float(s)),
                    ScalarKind::Bool => V::B(s.u() != 0),
                    other => panic!("conversion to {other:?}"),
                })
            }
            Expression::Relational { .. } => V::B(false),
            Expression::SubgroupOperationResult { ty } => zero(self.module, *ty),
            other => panic!("expression not modelled: {other:?}"),
        }
    }

    fn index(&mut self, l: usize, base: Handle<Expression>, i: u32) -> V {
        match self.eval(l, base) {
            V::Ptr(root, mut path) => {
                path.push(i);
                V::Ptr(root, path)
            }
            V::Vec(mut x) => x.swap_remove(i as usize),
            other => panic!("index into {other:?}"),
        }
    }

    /// Runs `block` for the lanes in `mask`; returns the lanes that left it (break, continue,
    /// return).
    fn run(&mut self, block: &naga::Block, mask: &[bool]) -> Vec<bool> {
        let mut active = mask.to_vec();
        let mut left = vec![false; LANES];
        for statement in block.iter() {
            if !active.iter().any(|&a| a) {
                break;
            }
            let lanes: Vec<usize> = (0..LANES).filter(|&l| active[l]).collect();
            match statement {
                Statement::Emit(range) => {
                    for h in range.clone() {
                        let mut pointers = Vec::new();
                        for &l in &lanes {
                            self.values[l].remove(&h);
                            let v = self.eval(l, h);
                            if let Expression::Load { pointer } = self.function.expressions[h] {
                                pointers.push((l, self.values[l][&pointer].clone()));
                            }
                            let _ = v;
                        }
                        if !pointers.is_empty() {
                            self.record(&pointers, false);
                        }
                    }
                }
                Statement::Block(b) => {
                    let out = self.run(b, &active);
                    for l in 0..LANES {
                        if out[l] {
                            active[l] = false;
                            left[l] = true;
                        }
                    }
                }
                Statement::If {
                    condition,
                    accept,
                    reject,
                } => {
                    let mut yes = vec![false; LANES];
                    let mut no = vec![false; LANES];
                    for &l in &lanes {
                        if self.eval(l, *condition).b() {
                            yes[l] = true;
                        } else {
                            no[l] = true;
                        }
                    }
                    let a = self.run(accept, &yes);
                    let b = self.run(reject, &no);
                    for l in 0..LANES {
                        if a[l] || b[l] {
                            active[l] = false;
                            left[l] = true;
                        }
                    }
                }
                Statement::Loop { body, .. } => {
                    // One trip: the pattern of every later trip is the same up to an offset
                    // common to all lanes. Lanes that break or continue leave the trip.
                    let _ = self.run(body, &active);
                }
                Statement::Break | Statement::Continue | Statement::Return { .. } => {
                    for &l in &lanes {
                        active[l] = false;
                        left[l] = true;
                    }
                }
                Statement::Store { pointer, value } => {
                    let mut pointers = Vec::new();
                    for &l in &lanes {
                        let p = self.eval(l, *pointer);
                        let v = self.eval(l, *value);
                        match &p {
                            V::Ptr(Root::Local(h), path) => {
                                let path = path.clone();
                                self.store_local(l, *h, &path, v);
                            }
                            _ => pointers.push((l, p)),
                        }
                    }
                    if !pointers.is_empty() {
                        self.record(&pointers, true);
                    }
                }
                Statement::ControlBarrier(_) | Statement::MemoryBarrier(_) => {}
                Statement::SubgroupGather { result, .. }
                | Statement::SubgroupCollectiveOperation { result, .. } => {
                    let ty = match self.function.expressions[*result] {
                        Expression::SubgroupOperationResult { ty } => ty,
                        _ => unreachable!(),
                    };
                    for &l in &lanes {
                        let z = zero(self.module, ty);
                        self.values[l].insert(*result, z);
                    }
                }
                other => panic!("statement not modelled: {other:?}"),
            }
        }
        // A break or continue inside a loop leaves the loop's trip only: the caller of a
        // loop body ignores `left`; for other blocks it propagates.
        left
    }

    fn run_main(&mut self) {
        // Local variables start at their initialiser (evaluated per lane) or zero.
        for (h, var) in self.function.local_variables.iter() {
            for l in 0..LANES {
                let v = match var.init {
                    Some(e) => self.eval(l, e),
                    None => zero(self.module, var.ty),
                };
                self.locals[l].insert(h, v);
            }
        }
        let body = &self.function.body;
        self.run(body, &[true; LANES]);
    }
}

fn literal(l: &Literal) -> V {
    match *l {
        Literal::U32(x) => V::U(x),
        Literal::I32(x) => V::I(x),
        Literal::F32(x) => V::F(x),
        Literal::Bool(x) => V::B(x),
        Literal::AbstractInt(x) => V::I(x as i32),
        Literal::AbstractFloat(x) => V::F(x as f32),
        other => panic!("literal {other:?}"),
    }
}

fn unary(op: UnaryOperator, v: &V) -> V {
    map1(v, &|s| match (op, s) {
        (UnaryOperator::Negate, V::F(f)) => V::F(-f),
        (UnaryOperator::Negate, V::I(i)) => V::I(-i),
        (UnaryOperator::LogicalNot, V::B(b)) => V::B(!b),
        (UnaryOperator::BitwiseNot, V::U(u)) => V::U(!u),
        (op, s) => panic!("{op:?} on {s:?}"),
    })
}

fn math(fun: MathFunction, a: V, b: Option<V>, c: Option<V>) -> V {
    let pair = |f: &dyn Fn(&V, &V) -> V| match (&a, &b) {
        (V::Vec(x), Some(V::Vec(y))) => V::Vec(x.iter().zip(y).map(|(a, b)| f(a, b)).collect()),
        (x, Some(y)) => f(x, y),
        _ => panic!("{fun:?} needs two arguments"),
    };
    match fun {
        MathFunction::Min => pair(&|x, y| match (x, y) {
            (V::U(x), V::U(y)) => V::U(*x.min(y)),
            (V::I(x), V::I(y)) => V::I(*x.min(y)),
            (x, y) => V::F(float(x).min(float(y))),
        }),
        MathFunction::Max => pair(&|x, y| match (x, y) {
            (V::U(x), V::U(y)) => V::U(*x.max(y)),
            (V::I(x), V::I(y)) => V::I(*x.max(y)),
            (x, y) => V::F(float(x).max(float(y))),
        }),
        MathFunction::Fma => {
            let c = c.expect("fma has three arguments");
            let prod = pair(&|x, y| V::F(float(x) * float(y)));
            binary(BinaryOperator::Add, &prod, &c)
        }
        MathFunction::Dot => V::F(0.0),
        _ => map1(&a, &|s| V::F(float(s))),
    }
}

/// The workgroup-memory accesses of one kernel, two warps through its fast path.
fn accesses(source: &str) -> Vec<Access> {
    // The text naga compiles: the spec text less `enable subgroups;`.
    let source = attnflow::gpu::shaders::for_naga(source);
    let module = naga::front::wgsl::parse_str(&source).expect("parses");
    let mut all = Vec::new();
    for lane0 in [0, LANES as u32] {
        let mut m = Machine::new(&module, lane0);
        m.run_main();
        all.extend(m.accesses);
    }
    all
}

/// Mean passes per warp access relative to the fewest, and the accesses by variable.
fn summary(accesses: &[Access]) -> (f64, String) {
    let mean = accesses
        .iter()
        .map(|a| a.passes as f64 / a.fewest as f64)
        .sum::<f64>()
        / accesses.len().max(1) as f64;
    let mut by: Vec<(String, bool, u32, u32, usize)> = Vec::new();
    for a in accesses {
        match by
            .iter_mut()
            .find(|b| b.0 == a.variable && b.1 == a.store && b.2 == a.passes && b.3 == a.fewest)
        {
            Some(b) => b.4 += 1,
            None => by.push((a.variable.clone(), a.store, a.passes, a.fewest, 1)),
        }
    }
    let text = by
        .iter()
        .map(|(v, s, p, f, n)| format!("{n} x {} {v} {p}/{f}", if *s { "store" } else { "load" }))
        .collect::<Vec<_>>()
        .join(", ");
    (mean, text)
}

/// The targets whose FlashAttention-2 kernels a GPU or CI runs: a large NVIDIA GPU
/// (subgroups of 32) and llvmpipe's limits with the hardware kernels (subgroups of 8, and
/// without subgroups: the workgroup-memory reductions).
fn targets() -> [(&'static str, Target); 3] {
    let llvmpipe_hw = Target {
        profile: Profile::Hardware,
        ..Target::LLVMPIPE
    };
    [
        ("NVIDIA", Target::NVIDIA),
        ("llvmpipe, hardware kernels", llvmpipe_hw),
        (
            "llvmpipe, no subgroups",
            Target {
                subgroup_min: None,
                ..llvmpipe_hw
            },
        ),
    ]
}

#[test]
fn flash_attention_at_d64_averages_at_most_one_and_a_quarter_passes_per_warp_access() {
    for (name, target) in targets() {
        for variant in [
            Variant::default(),
            Variant {
                causal: true,
                alibi: false,
            },
        ] {
            let kernel = AttentionKernel::for_dimension(64, &target);
            assert!(matches!(kernel, AttentionKernel::Block(_)), "{name}");
            let acc = accesses(&kernel.source(variant));
            let (mean, text) = summary(&acc);
            eprintln!("{name} d = 64 {variant:?}: {mean:.3} passes per access ({text})");
            assert!(
                acc.iter().any(|a| a.variable == "qs" && !a.store)
                    && acc.iter().any(|a| a.variable == "ps" && a.store)
                    && acc.iter().any(|a| a.variable == "kt" && !a.store),
                "{name}: the score and output phases ran ({text})"
            );
            assert!(mean <= 1.25, "{name}: {mean:.3} passes per access: {text}");
        }
    }
}

/// The other dimensions, for the record (and a check that the model runs on every shape).
#[test]
fn bank_passes_of_every_flash_attention_shape() {
    for (name, target) in targets() {
        for d in [16usize, 32, 64, 128, 256] {
            let kernel = AttentionKernel::for_dimension(d, &target);
            let AttentionKernel::Block(b) = kernel else {
                continue;
            };
            let acc = accesses(&kernel.source(Variant::default()));
            let (mean, text) = summary(&acc);
            eprintln!(
                "{name} d = {d} (BQ {}, BK {}, quads {}): {mean:.3} passes per access ({text})",
                b.bq,
                b.bk,
                b.quads()
            );
            assert!(!acc.is_empty());
            assert!(acc.iter().all(|a| a.passes >= a.fewest));
        }
    }
}

#[test]
fn the_bank_model_counts_a_known_conflict() {
    // A stride of 32 words: every lane in bank 0, 32 passes; a stride of 1: one pass; a
    // broadcast: one pass.
    let kernel = |index: &str| {
        format!(
            "var<workgroup> w: array<f32, 2048>;\n\
             @group(0) @binding(0) var<storage, read_write> out: array<f32>;\n\
             @compute @workgroup_size(64)\n\
             fn main(@builtin(local_invocation_id) lid: vec3<u32>) {{\n\
                 let t = lid.x;\n\
                 out[t] = w[{index}];\n\
             }}\n"
        )
    };
    for (index, passes) in [("t * 32u", 32), ("t", 1), ("7u", 1), ("t * 2u", 2)] {
        let acc = accesses(&kernel(index));
        assert_eq!(acc.len(), 2, "{index}");
        for a in acc {
            assert_eq!((a.passes, a.fewest), (passes, 1), "{index}");
        }
    }
}

// The last level of adaptive stepping's error sums (adaptive_combine.wgsl, mode 2): one
// workgroup per system sums its `groups` partial sums (strided over the invocations, then a
// tree in workgroup memory, f32) into sums[b], the one number per system read back.
// f64 twin: scaled_sums_by_system in src/backend/reference/mod.rs.

const WG: u32 = 64u;

struct Reduce {
    groups: u32,
    partials: u32,
    sums: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> reduce: Reduce;
// [acc: batch n d][partials: batch groups][sums: batch]
@group(0) @binding(1) var<storage, read_write> work: array<f32>;

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let b = wid.x;
    var sum = 0.0;
    for (var w = lid.x; w < reduce.groups; w += WG) {
        sum += work[reduce.partials + b * reduce.groups + w];
    }
    red[lid.x] = sum;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if lid.x < s {
            red[lid.x] += red[lid.x + s];
        }
        workgroupBarrier();
    }
    if lid.x == 0u {
        work[reduce.sums + b] = red[0];
    }
}

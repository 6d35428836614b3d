package dev.dvmm.dsm.transport;

import dev.dvmm.bindings.Ucp;
import dev.dvmm.bindings.UcxException;
import dev.dvmm.bindings.ucx.UcpConstants;
import dev.dvmm.bindings.ucx.UcpParams;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What UCX offers on this machine, for {@code dvmm info}: whether libucp loads, its version, and the
 * transports/devices a context with dvmm's features sees (from {@code ucp_context_print_info}, so
 * UCX_TLS and UCX_NET_DEVICES in the environment are honoured, as they will be by the transport).
 *
 * @param installed whether libucp and libucs load
 * @param version   the library version ("1.13.1"), or null
 * @param resources transport/device pairs ("tcp/eth0", "rc_mlx5/mlx5_0:1"), empty if unknown
 * @param problem   why UCX is unusable, or null
 */
public record UcxInfo(boolean installed, String version, List<String> resources, String problem) {
    /** "resource 1 : md 1 dev 1 flags -- tcp/lo" in ucp_context_print_info's output. */
    private static final Pattern RESOURCE = Pattern.compile("#\\s*resource\\s+\\d+\\s*:.*\\s(\\S+/\\S+)\\s*$",
            Pattern.MULTILINE);

    public UcxInfo {
        resources = List.copyOf(resources);
    }

    /** Probes this machine: loads UCX, creates and drops a context. Never throws for a missing UCX. */
    public static UcxInfo probe() {
        Ucp ucp;
        try {
            ucp = Ucp.load();
        } catch (UcxException e) {
            return new UcxInfo(false, null, List.of(), e.getMessage());
        }
        int[] v = ucp.version();
        String version = v[0] + "." + v[1] + "." + v[2];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment params = arena.allocate(UcpParams.LAYOUT);
            UcpParams.fieldMask(params, UcpConstants.UCP_PARAM_FIELD_FEATURES);
            UcpParams.features(params, UcpConstants.UCP_FEATURE_AM | UcpConstants.UCP_FEATURE_RMA
                    | UcpConstants.UCP_FEATURE_WAKEUP);
            long config = ucp.configRead();
            long context;
            try {
                context = ucp.init(params, config);
            } finally {
                ucp.configRelease(config);
            }
            try {
                return new UcxInfo(true, version, resourcesIn(ucp.contextInfo(context)), null);
            } finally {
                ucp.cleanup(context);
            }
        } catch (UcxException e) {
            return new UcxInfo(true, version, List.of(), "UCX cannot create a context: " + e.getMessage());
        }
    }

    /** The transport/device pairs listed in {@code ucp_context_print_info} output. */
    static List<String> resourcesIn(String contextInfo) {
        List<String> found = new ArrayList<>();
        Matcher m = RESOURCE.matcher(contextInfo);
        while (m.find()) {
            found.add(m.group(1));
        }
        return found;
    }

    /** True if the output lists an InfiniBand/RoCE transport (rc, ud or dc, verbs or mlx5). */
    static boolean rdmaTransportIn(String contextInfo) {
        for (String resource : resourcesIn(contextInfo)) {
            if (isRdma(resource)) {
                return true;
            }
        }
        return false;
    }

    private static boolean isRdma(String resource) {
        String transport = resource.substring(0, resource.indexOf('/'));
        return transport.startsWith("rc") || transport.startsWith("ud") || transport.startsWith("dc");
    }

    /** Whether an RDMA transport is among the resources. */
    public boolean rdma() {
        for (String resource : resources) {
            if (isRdma(resource)) {
                return true;
            }
        }
        return false;
    }

    /** One line per fact, for {@code dvmm info}. */
    public List<String> lines() {
        List<String> lines = new ArrayList<>();
        if (!installed) {
            lines.add("UCX: no (" + problem + ")");
            return lines;
        }
        lines.add("UCX: yes, libucp " + version + " (headers of the bindings: " + UcpConstants.UCP_API_MAJOR + "."
                + UcpConstants.UCP_API_MINOR + ")");
        if (problem != null) {
            lines.add("UCX transports: unknown (" + problem + ")");
            return lines;
        }
        lines.add("UCX transports: " + (resources.isEmpty() ? "none" : String.join(", ", resources)));
        lines.add("UCX RDMA (InfiniBand/RoCE): " + (rdma() ? "yes" : "no, UCX will use TCP and shared memory"));
        return lines;
    }

    /** Prints {@link #lines()}; exits 1 if UCX is unusable. */
    public static void main(String[] args) {
        UcxInfo info = probe();
        info.lines().forEach(System.out::println);
        if (!info.installed() || info.problem() != null) {
            System.exit(1);
        }
    }
}

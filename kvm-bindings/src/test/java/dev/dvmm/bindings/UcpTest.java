package dev.dvmm.bindings;

import dev.dvmm.bindings.ucx.UcpAmHandlerParam;
import dev.dvmm.bindings.ucx.UcpConstants;
import dev.dvmm.bindings.ucx.UcpEpParams;
import dev.dvmm.bindings.ucx.UcpParams;
import dev.dvmm.bindings.ucx.UcpRequestParam;
import dev.dvmm.bindings.ucx.UcpWorkerAttr;
import dev.dvmm.bindings.ucx.UcpWorkerParams;
import dev.dvmm.bindings.ucx.UcsConstants;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The hand-written UCX downcalls and upcalls against the installed libucp. */
class UcpTest {

    private static Ucp ucp() {
        assumeTrue(Ucp.isInstalled(), "UCX is not installed (apt-get install libucx0): skipping UCX calls");
        return Ucp.load();
    }

    @Test
    void aMissingLibraryIsReportedInOneSentence() {
        UcxException e = assertThrows(UcxException.class, () -> Ucp.load("libucp-dvmm-absent.so.0", Ucp.UCS_LIBRARY));
        assertTrue(e.getMessage().startsWith("UCX is not installed: cannot load libucp-dvmm-absent.so.0"), e.getMessage());
        assertEquals(UcxException.NOT_INSTALLED, e.status());
    }

    @Test
    void libraryVersionIsAtLeastTheHeadersAndStatusesHaveText() {
        Ucp ucp = ucp();
        int[] version = ucp.version();
        assertEquals(UcpConstants.UCP_API_MAJOR, version[0], "library major version differs from the headers");
        assertTrue(version[1] >= UcpConstants.UCP_API_MINOR, "library older than the headers: " + version[1]);
        assertEquals("Success", ucp.statusString(UcsConstants.UCS_OK));
        assertTrue(ucp.statusString(UcsConstants.UCS_ERR_NO_MEMORY).toLowerCase().contains("memory"));
        UcxException e = assertThrows(UcxException.class, () -> ucp.check(UcsConstants.UCS_ERR_UNREACHABLE, "probe"));
        assertEquals(UcsConstants.UCS_ERR_UNREACHABLE, e.status());
        assertTrue(e.getMessage().startsWith("probe failed: "), e.getMessage());
    }

    @Test
    void statusPointersDecodeLikeTheCMacros() {
        assertTrue(Ucp.isError(UcsConstants.UCS_ERR_NO_MEMORY));
        assertTrue(Ucp.isError(UcsConstants.UCS_ERR_LAST));
        assertTrue(!Ucp.isError(0) && !Ucp.isRequest(0));
        assertTrue(Ucp.isRequest(0x7f00_1234_5000L) && !Ucp.isError(0x7f00_1234_5000L));
        assertEquals(UcsConstants.UCS_INPROGRESS, Ucp.status(0x7f00_1234_5000L));
        assertEquals(UcsConstants.UCS_ERR_CANCELED, Ucp.status(UcsConstants.UCS_ERR_CANCELED));
    }

    /** A memory-domain variable set on one configuration shows in its printout; a bad value is refused. */
    @Test
    void configModifyCarriesComponentVariables() {
        Ucp ucp = ucp();
        long config = ucp.configRead();
        try {
            assertTrue(!ucp.configText(config, UcsConstants.UCS_CONFIG_PRINT_CONFIG).contains("REG_METHODS=odp"),
                    "the environment already sets REG_METHODS");
            ucp.configModify(config, "REG_METHODS", "odp,direct");
            String text = ucp.configText(config, UcsConstants.UCS_CONFIG_PRINT_CONFIG);
            assertTrue(text.contains("REG_METHODS=odp,direct"), text);
            ucp.configModify(config, "TLS", "tcp");
            assertTrue(ucp.configText(config, UcsConstants.UCS_CONFIG_PRINT_CONFIG).contains("UCX_TLS=tcp"));
            UcxException e = assertThrows(UcxException.class, () -> ucp.configModify(config, "RCACHE_ENABLE", "banana"));
            assertTrue(e.getMessage().startsWith("ucp_config_modify(RCACHE_ENABLE=banana) failed"), e.getMessage());
        } finally {
            ucp.configRelease(config);
        }
    }

    /** A worker sends itself an active message through an endpoint to its own address. */
    @Test
    void activeMessageLoopbackThroughUpcalls() {
        Ucp ucp = ucp();
        try (Arena arena = Arena.ofShared()) {
            MemorySegment params = arena.allocate(UcpParams.LAYOUT);
            UcpParams.fieldMask(params, UcpConstants.UCP_PARAM_FIELD_FEATURES);
            UcpParams.features(params, UcpConstants.UCP_FEATURE_AM);
            long config = ucp.configRead();
            long context;
            try {
                context = ucp.init(params, config);
            } finally {
                ucp.configRelease(config);
            }
            assertTrue(ucp.contextInfo(context).contains("UCP context"), "context info lacks its title");
            MemorySegment workerParams = arena.allocate(UcpWorkerParams.LAYOUT);
            UcpWorkerParams.fieldMask(workerParams, UcpConstants.UCP_WORKER_PARAM_FIELD_THREAD_MODE);
            UcpWorkerParams.threadMode(workerParams, UcsConstants.UCS_THREAD_MODE_MULTI);
            long worker = ucp.workerCreate(context, workerParams);
            MemorySegment attr = arena.allocate(UcpWorkerAttr.LAYOUT);
            UcpWorkerAttr.fieldMask(attr, UcpConstants.UCP_WORKER_ATTR_FIELD_MAX_AM_HEADER);
            ucp.workerQuery(worker, attr);
            assertTrue(UcpWorkerAttr.maxAmHeader(attr) >= 64, "max AM header " + UcpWorkerAttr.maxAmHeader(attr));

            AtomicLong received = new AtomicLong();
            MemorySegment all = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);
            Ucp.ActiveMessageHandler handler = (arg, header, headerLength, data, length, param) -> {
                // SAFETY: header and data are valid during the callback, headerLength/length bytes each.
                long h = all.get(ValueLayout.JAVA_LONG_UNALIGNED, header);
                long d = all.get(ValueLayout.JAVA_LONG_UNALIGNED, data);
                received.set(arg == 77 && headerLength == 8 && length == 8 ? h + d : -1);
                return (byte) UcsConstants.UCS_OK;
            };
            MemorySegment handlerParams = arena.allocate(UcpAmHandlerParam.LAYOUT);
            UcpAmHandlerParam.fieldMask(handlerParams, UcpConstants.UCP_AM_HANDLER_PARAM_FIELD_ID
                    | UcpConstants.UCP_AM_HANDLER_PARAM_FIELD_CB | UcpConstants.UCP_AM_HANDLER_PARAM_FIELD_ARG
                    | UcpConstants.UCP_AM_HANDLER_PARAM_FIELD_FLAGS);
            UcpAmHandlerParam.id(handlerParams, 3);
            UcpAmHandlerParam.flags(handlerParams, UcpConstants.UCP_AM_FLAG_WHOLE_MSG);
            UcpAmHandlerParam.cb(handlerParams, Ucp.activeMessageStub(handler, arena).address());
            UcpAmHandlerParam.arg(handlerParams, 77);
            ucp.setAmRecvHandler(worker, handlerParams);

            byte[] address = ucp.workerAddress(worker);
            assertTrue(address.length > 0);
            MemorySegment addressCopy = arena.allocateFrom(ValueLayout.JAVA_BYTE, address);
            MemorySegment epParams = arena.allocate(UcpEpParams.LAYOUT);
            UcpEpParams.fieldMask(epParams, UcpConstants.UCP_EP_PARAM_FIELD_REMOTE_ADDRESS);
            UcpEpParams.address(epParams, addressCopy.address());
            long ep = ucp.epCreate(worker, epParams);

            MemorySegment header = arena.allocate(8);
            MemorySegment data = arena.allocate(8);
            header.set(ValueLayout.JAVA_LONG, 0, 1000);
            data.set(ValueLayout.JAVA_LONG, 0, 234);
            MemorySegment sendParam = arena.allocate(UcpRequestParam.LAYOUT);
            long status = ucp.amSendNbx(ep, 3, header.address(), 8, data.address(), 8, sendParam);
            assertTrue(!Ucp.isError(status), "ucp_am_send_nbx: " + ucp.statusString(Ucp.status(status)));
            long deadline = System.nanoTime() + 10_000_000_000L;
            while ((received.get() == 0 || (Ucp.isRequest(status)
                    && ucp.requestCheckStatus(status) == UcsConstants.UCS_INPROGRESS)) && System.nanoTime() < deadline) {
                ucp.workerProgress(worker);
            }
            if (Ucp.isRequest(status)) {
                ucp.requestFree(status);
            }
            assertEquals(1234, received.get(), "the active message did not arrive intact");

            MemorySegment closeParam = arena.allocate(UcpRequestParam.LAYOUT);
            UcpRequestParam.opAttrMask(closeParam, UcpConstants.UCP_OP_ATTR_FIELD_FLAGS);
            UcpRequestParam.flags(closeParam, UcpConstants.UCP_EP_CLOSE_FLAG_FORCE);
            long close = ucp.epCloseNbx(ep, closeParam);
            while (Ucp.isRequest(close) && ucp.requestCheckStatus(close) == UcsConstants.UCS_INPROGRESS) {
                ucp.workerProgress(worker);
            }
            if (Ucp.isRequest(close)) {
                ucp.requestFree(close);
            }
            ucp.workerDestroy(worker);
            ucp.cleanup(context);
            assertArrayEquals(address, address.clone());
        }
    }
}

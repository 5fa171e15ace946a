// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title RootAnchor: write-once chain anchors for StepProof log checkpoints.
/// @notice One transaction anchors one signed log checkpoint (origin, tree
/// size, root) and with it every trace in the log up to that size.
///
/// - logId is SHA-256 of the log origin string (docs/FORMAT.md, "Chain
///   anchors"); the contract never sees the origin itself.
/// - Registration: the deployer (owner) registers the one address allowed to
///   anchor a logId (`register`), and may later move it to a new address
///   (key rotation). Anchored roots are never changed by either.
/// - A root is written once per (logId, treeSize), and tree sizes only grow:
///   an anchor for a size at or below the latest anchored size is rejected.
///   Zero sizes and zero roots are rejected, so a zero answer from `rootOf`
///   always means "not anchored".
contract RootAnchor {
    /// The deployer; the only address that may register anchorers.
    address public immutable owner;

    /// Per log, in one storage slot (one cold read and one write per anchor):
    /// the address allowed to anchor it (zero: not registered) and the
    /// largest anchored tree size (zero: none).
    struct LogState {
        address anchorer;
        uint64 latestSize;
    }

    mapping(bytes32 => LogState) private logs;
    /// logId => treeSize => root (zero: not anchored).
    mapping(bytes32 => mapping(uint64 => bytes32)) private roots;

    event AnchorerRegistered(bytes32 indexed logId, address indexed anchorer);
    event RootAnchored(bytes32 indexed logId, uint64 indexed treeSize, bytes32 root);

    error NotOwner(address caller);
    error ZeroAnchorer();
    error NotAnchorer(bytes32 logId, address caller);
    error EmptyCheckpoint();
    error AlreadyAnchored(bytes32 logId, uint64 treeSize, bytes32 root);
    error StaleTreeSize(bytes32 logId, uint64 treeSize, uint64 latestTreeSize);

    constructor() {
        owner = msg.sender;
    }

    /// Sets (or moves) the address allowed to anchor `logId`. Owner only.
    function register(bytes32 logId, address anchorer) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        if (anchorer == address(0)) revert ZeroAnchorer();
        logs[logId].anchorer = anchorer;
        emit AnchorerRegistered(logId, anchorer);
    }

    /// Anchors the checkpoint (logId, treeSize, root). Registered anchorer
    /// only; write-once; sizes strictly increase per logId.
    function anchor(bytes32 logId, uint64 treeSize, bytes32 root) external {
        LogState memory state = logs[logId];
        if (msg.sender != state.anchorer) revert NotAnchorer(logId, msg.sender);
        if (treeSize == 0 || root == bytes32(0)) revert EmptyCheckpoint();
        bytes32 existing = roots[logId][treeSize];
        if (existing != bytes32(0)) revert AlreadyAnchored(logId, treeSize, existing);
        if (treeSize < state.latestSize) revert StaleTreeSize(logId, treeSize, state.latestSize);
        roots[logId][treeSize] = root;
        logs[logId].latestSize = treeSize;
        emit RootAnchored(logId, treeSize, root);
    }

    /// The address allowed to anchor `logId`, or zero if none is registered.
    function anchorerOf(bytes32 logId) external view returns (address) {
        return logs[logId].anchorer;
    }

    /// The root anchored for (logId, treeSize), or zero if none.
    function rootOf(bytes32 logId, uint64 treeSize) external view returns (bytes32) {
        return roots[logId][treeSize];
    }

    /// The largest anchored tree size of `logId` and its root; (0, 0) if none.
    function latest(bytes32 logId) external view returns (uint64 treeSize, bytes32 root) {
        treeSize = logs[logId].latestSize;
        root = roots[logId][treeSize];
    }
}

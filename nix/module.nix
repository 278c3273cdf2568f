# NixOS module for opd: `services.opd = { enable = true; state = { ovs.bridges.ovsbr0.ports = { }; }; };`
# renders the state document with pkgs.formats.json, checks it with `opd validate` at build time
# (a bad state fails nixos-rebuild, not the service) and runs `opd daemon` as the same
# Type=notify unit as packaging/systemd/opd.service.
#
# Moving from op-dbus: its configuration works unchanged. `services.op-dbus.{enable, package,
# mode, stateConfig}` are renamed options (a warning says so), `enableBlockchain`, `enableCache`
# and `dataDir` are accepted with a warning that opd has no such thing (it keeps a hash-chained
# audit trail instead). `services.opd.stateConfig` is an alias of `services.opd.state`.
{ config, lib, pkgs, ... }:

let
  cfg = config.services.opd;
  json = pkgs.formats.json { };

  # op-dbus options opd has nothing for: accepted, with a warning (nixpkgs' mkRemovedOptionModule
  # would fail the build with an assertion; op-dbus configurations must keep evaluating)
  mkIgnoredOptionModule = path: why: { options, ... }: {
    options = lib.setAttrByPath path (lib.mkOption {
      type = lib.types.anything;
      visible = false;
      description = "Accepted for op-dbus compatibility and ignored: ${why}";
    });
    config.warnings =
      let opt = lib.getAttrFromPath path options; in
      lib.optional opt.isDefined
        "The option `${lib.showOption path}' defined in ${lib.showFiles opt.files} has no effect with opd: ${why}";
  };

  plugins = cfg.state;
  document = { version = 1; inherit plugins; };
  renderedState = json.generate "opd-state.json" document;

  # the document checked at build time: `opd validate` reads it (no host access) and prints its
  # warnings into the build log; an invalid document fails the build with its messages
  validate = name: file: pkgs.runCommand name { nativeBuildInputs = [ cfg.package ]; inherit file; } ''
    OPD_VARS_FILE=${renderedVars} opd validate "$file"
    cp "$file" "$out"
  '';
  # the document's parameter values (services.opd.vars), the host's vars file
  renderedVars = json.generate "opd-vars.json" cfg.vars;
  validatedState = validate "opd-state.json" renderedState;

  # a stateFile given as a Nix path is copied to the store (and validated there); a string is a
  # file on the host that opd reads at run time (edits picked up without a rebuild)
  stateFileIsPath = cfg.stateFile != null && builtins.isPath cfg.stateFile;
  validatedStateFile = validate "opd-state-${baseNameOf cfg.stateFile}" cfg.stateFile;
  stateFile =
    if cfg.stateFile == null then "/etc/opd/state.json"
    else if stateFileIsPath then "${validatedStateFile}"
    else cfg.stateFile;

  # op-dbus puts OVS bridges and ports under net.interfaces with type ovs-bridge / ovs-port
  usesOvs = plugins ? ovs || plugins ? openflow
    || lib.any (i: builtins.elem (i.type or "") [ "ovs-bridge" "ovs-port" ]) ((plugins.net or { }).interfaces or [ ]);
  usesLxc = plugins ? lxc;
  usesLibvirt = plugins ? libvirt;

  # systemd's rules for Exec lines (not a shell): each argument quoted, % and $ doubled — the
  # same as nixpkgs' utils.escapeSystemdExecArgs, which modules get as the `utils` argument
  escapeSystemdExecArg = arg: builtins.replaceStrings [ "%" "$" ] [ "%%" "$$" ] (builtins.toJSON (toString arg));
  escapeSystemdExecArgs = lib.escapeSystemdExecArgs or (lib.concatMapStringsSep " " escapeSystemdExecArg);

  fleet = cfg.fleet;
  # fleet mode: the document comes from etcd (opd daemon --etcd); it is kept under /var/lib/opd
  fleetArgs = [ "--etcd" (builtins.concatStringsSep "," fleet.etcd) "--lease-ttl" (toString fleet.leaseTtl) ]
    ++ lib.optionals (fleet.host != null) [ "--host" fleet.host ]
    ++ builtins.concatLists (map (k: [ "--label" "${k}=${fleet.labels.${k}}" ]) (builtins.attrNames fleet.labels))
    ++ lib.optionals (fleet.user != null) [ "--etcd-user" fleet.user ]
    ++ lib.optionals (fleet.passwordFile != null) [ "--etcd-password-file" fleet.passwordFile ]
    ++ lib.optionals (fleet.caFile != null) [ "--etcd-ca" fleet.caFile ]
    ++ lib.optionals (fleet.certFile != null) [ "--etcd-cert" fleet.certFile ]
    ++ lib.optionals (fleet.keyFile != null) [ "--etcd-key" fleet.keyFile ]
    ++ lib.optionals (fleet.keysFile != null) [ "--fleet-keys" fleet.keysFile ];
  args = [ "daemon" ]
    ++ (if fleet.enable then fleetArgs else [ "--state" stateFile ])
    ++ [ "--resync" (toString cfg.resync) "--audit-log" cfg.auditLog ]
    ++ lib.optional cfg.allowDestroy "--allow-destroy"
    ++ cfg.extraArgs;
in
{
  imports = [
    (lib.mkRenamedOptionModule [ "services" "op-dbus" "enable" ] [ "services" "opd" "enable" ])
    (lib.mkRenamedOptionModule [ "services" "op-dbus" "package" ] [ "services" "opd" "package" ])
    (lib.mkRenamedOptionModule [ "services" "op-dbus" "mode" ] [ "services" "opd" "mode" ])
    (lib.mkRenamedOptionModule [ "services" "op-dbus" "stateConfig" ] [ "services" "opd" "state" ])
    (lib.mkAliasOptionModule [ "services" "opd" "stateConfig" ] [ "services" "opd" "state" ])
    (mkIgnoredOptionModule [ "services" "op-dbus" "enableBlockchain" ]
      "opd records every run in a hash-chained audit trail (services.opd.auditLog; `opd audit verify`); there is no blockchain to enable.")
    (mkIgnoredOptionModule [ "services" "op-dbus" "enableCache" ]
      "opd keeps no btrfs snapshot cache; remove the option.")
    (mkIgnoredOptionModule [ "services" "op-dbus" "dataDir" ]
      "opd keeps its state in /var/lib/opd (StateDirectory); set services.opd.auditLog to move the audit trail.")
  ];

  options.services.opd = {
    enable = lib.mkEnableOption "opd, the declarative reconciler for virtualization hosts (opd daemon)";

    package = lib.mkOption {
      type = lib.types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./nix/package.nix { }";
      description = "The opd package.";
    };

    state = lib.mkOption {
      # a submodule with a JSON freeform type: definitions from several modules merge deeply
      # (attribute sets by key, lists concatenated), as they would in the rendered document
      type = lib.types.submodule { freeformType = json.type; };
      default = { };
      example = lib.literalExpression ''{ ovs.bridges.ovsbr0.ports.vi100 = { type = "internal"; tag = 10; }; }'';
      description = ''
        The `plugins` of the state document (one attribute per plugin: ovs, systemd, lxc, …),
        rendered as JSON into /etc/opd/state.json and checked with `opd validate` at build time.
        op-dbus's forms (net.interfaces lists, lxc.containers lists) are accepted as they are.
        Only what is named here is managed.
      '';
    };

    stateFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      example = lib.literalExpression "./state.yaml";
      description = ''
        Use this document (YAML or JSON) instead of rendering `state`. A Nix path (./state.yaml)
        is copied to the store and validated at build time; a string ("/etc/opd/state.yaml") is
        read on the host at run time, and edits are picked up without a restart.
      '';
    };

    vars = lib.mkOption {
      type = json.type;
      default = { };
      example = { address = "192.168.1.10"; gateway = "192.168.1.1"; uplink = "enp1s0"; };
      description = ''
        Values of the document's parameters (its `params:`), written to varsFile (/etc/opd/vars.yaml)
        and read by `opd daemon`, opd-boot and `opd apply`/`diff` alike. No secrets here (the store
        is world-readable): a secret parameter reads the file its `from_file:` names.
      '';
    };

    varsFile = lib.mkOption {
      type = lib.types.str;
      default = "/etc/opd/vars.yaml";
      description = ''
        The host's vars file (OPD_VARS_FILE of both units): a YAML map of parameter values, read
        when it exists after --var, --vars and OPD_VAR_*. `vars` fills it when this is the default.
      '';
    };

    mode = lib.mkOption {
      type = lib.types.nullOr (lib.types.enum [ "full" "standalone" "agent" ]);
      default = null;
      description = ''
        op-dbus's deployment mode (full: OVS + LXC, standalone: OVS, agent: D-Bus plugins only).
        opd manages exactly what the state names; the mode is checked against it (agent with an
        OVS state is an error).
      '';
    };

    resync = lib.mkOption {
      type = lib.types.ints.unsigned;
      default = 300;
      description = "Seconds between full resyncs that catch missed events (0: off).";
    };

    auditLog = lib.mkOption {
      type = lib.types.str;
      default = "/var/lib/opd/audit.jsonl";
      description = "The hash-chained audit trail.";
    };

    allowDestroy = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Allow data-destroying operations (destroying containers, domains, storage) everywhere.";
    };

    fleet = {
      enable = lib.mkEnableOption "fleet mode: the host's document is the merge of the fragments in etcd that select it (opd daemon --etcd); set state or stateFile, or this";
      etcd = lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; example = [ "https://10.0.0.1:2379" ]; description = "etcd client URLs (opd daemon --etcd)."; };
      host = lib.mkOption { type = lib.types.nullOr lib.types.str; default = null; example = "kvm-07"; description = "This host's name in the fleet (default: the hostname)."; };
      labels = lib.mkOption { type = lib.types.attrsOf lib.types.str; default = { }; example = { role = "kvm"; }; description = "Labels that fragments select hosts by (opd fleet put --selector role=kvm)."; };
      leaseTtl = lib.mkOption { type = lib.types.ints.unsigned; default = 10; description = "Seconds after which the host shows as not alive when the daemon stops renewing its lease."; };
      user = lib.mkOption { type = lib.types.nullOr lib.types.str; default = null; description = "etcd user created by `opd fleet enroll NAME`."; };
      passwordFile = lib.mkOption { type = lib.types.nullOr lib.types.str; default = null; description = "File holding the etcd user's password (kept out of the Nix store)."; };
      caFile = lib.mkOption { type = lib.types.nullOr lib.types.str; default = null; example = "/etc/opd/etcd-ca.pem"; description = "PEM CA bundle that signed etcd's server certificate (https:// endpoints; default: the system's roots)."; };
      certFile = lib.mkOption { type = lib.types.nullOr lib.types.str; default = null; description = "PEM client certificate, for an etcd run with --client-cert-auth (with keyFile)."; };
      keyFile = lib.mkOption { type = lib.types.nullOr lib.types.str; default = null; description = "PEM private key of certFile (kept out of the Nix store)."; };
      keysFile = lib.mkOption { type = lib.types.nullOr lib.types.str; default = null; example = "/etc/opd/operator-keys.pub"; description = "The trusted operator public keys (PEM, from opd fleet keygen; several during a rotation): only fragments one of them signed are applied (opd daemon --fleet-keys)."; };
    };

    extraArgs = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [ "--backoff-cap" "120" "--log-level" "debug" ];
      description = "More arguments for `opd daemon`.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.stateFile == null || plugins == { };
        message = "services.opd: set either services.opd.state (or stateConfig) or services.opd.stateFile, not both.";
      }
      {
        assertion = cfg.stateFile != null || plugins != { } || fleet.enable;
        message = "services.opd: nothing to manage: set services.opd.state = { ovs = { … }; } or services.opd.stateFile.";
      }
      {
        assertion = !fleet.enable || (cfg.stateFile == null && plugins == { });
        message = "services.opd: fleet mode takes the document from etcd: remove services.opd.state/stateFile or set services.opd.fleet.enable = false.";
      }
      {
        assertion = !fleet.enable || fleet.etcd != [ ];
        message = "services.opd: fleet mode needs the etcd endpoints: set services.opd.fleet.etcd = [ \"https://HOST:2379\" ];";
      }
      {
        assertion = (fleet.certFile == null) == (fleet.keyFile == null);
        message = "services.opd: set services.opd.fleet.certFile and services.opd.fleet.keyFile together.";
      }
      {
        assertion = (fleet.user == null) == (fleet.passwordFile == null);
        message = "services.opd: set services.opd.fleet.user and services.opd.fleet.passwordFile together (opd fleet enroll prints both).";
      }
      {
        # cfg.mode is read first: it is type-checked (op-dbus's modes only) even when no OVS is named
        assertion = cfg.mode != "agent" || !usesOvs;
        message = "services.opd: mode = \"agent\" manages no Open vSwitch, but the state names OVS bridges: use mode = \"standalone\" or \"full\".";
      }
      {
        assertion = !usesOvs || config.virtualisation.vswitch.enable;
        message = "services.opd: the state manages Open vSwitch bridges but Open vSwitch is not running: set virtualisation.vswitch.enable = true;";
      }
      {
        assertion = !usesLxc || config.virtualisation.lxc.enable;
        message = "services.opd: the state manages LXC containers: set virtualisation.lxc.enable = true;";
      }
      {
        assertion = !usesLibvirt || config.virtualisation.libvirtd.enable;
        message = "services.opd: the state manages libvirt networks or domains: set virtualisation.libvirtd.enable = true;";
      }
    ];

    # the inline document goes through the Nix store, which every local user can read
    warnings = lib.optional (plugins != { })
      "services.opd.state is rendered into the Nix store (/etc/opd/state.json links there), which every local user can read: keep secrets (passwords, keys, tokens) out of it. Keep a document with secrets in services.opd.stateFile = \"/etc/opd/state.yaml\" (a string: read on the host, never copied to the store), and let it read each secret from a file outside the store with a secret parameter: params.db_password = { type: string, secret: true, from_file: /run/keys/db_password }.";

    # packaging/polkit/org.opd.reconciler1.policy comes with the package (share/polkit-1/actions)
    environment.systemPackages = [ cfg.package ];
    environment.etc = lib.mkMerge [
      (lib.mkIf (cfg.stateFile == null && !fleet.enable) { "opd/state.json".source = validatedState; })
      (lib.mkIf (cfg.vars != { } && cfg.varsFile == "/etc/opd/vars.yaml") { "opd/vars.yaml".source = renderedVars; })
    ];
    services.dbus.packages = [ cfg.package ];

    systemd.services.opd = {
      description = "opd declarative reconciler (continuous)";
      documentation = [ "https://opd.dev" ];
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      # nixpkgs' virtualisation.vswitch runs ovsdb.service and ovs-vswitchd.service
      after = [ "network-online.target" "dbus.service" ]
        ++ lib.optionals usesOvs [ "ovsdb.service" "ovs-vswitchd.service" ]
        ++ lib.optional usesLibvirt "libvirtd.service";
      requires = lib.optionals usesOvs [ "ovs-vswitchd.service" ];
      path = [ pkgs.systemd pkgs.iproute2 ]
        ++ lib.optional usesOvs config.virtualisation.vswitch.package
        ++ lib.optional usesLxc pkgs.lxc
        ++ lib.optional usesLibvirt pkgs.libvirt;
      # a changed document reaches the running daemon as SIGHUP on nixos-rebuild switch
      reloadTriggers = lib.optional (cfg.stateFile == null && !fleet.enable) validatedState ++ lib.optional stateFileIsPath validatedStateFile;
      environment.OPD_LOG_LEVEL = "info";
      environment.OPD_VARS_FILE = cfg.varsFile;
      # the same unit as packaging/systemd/opd.service (a test compares them)
      serviceConfig = {
        Type = "notify";
        NotifyAccess = "main";
        ExecStart = "${cfg.package}/bin/opd ${escapeSystemdExecArgs args}";
        ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
        Restart = "on-failure";
        RestartSec = "5s";
        RestartPreventExitStatus = 65;
        WatchdogSec = "60s";
        TimeoutStartSec = "15min";
        KillMode = "mixed";
        TimeoutStopSec = "2min";
        ProtectSystem = "strict";
        StateDirectory = "opd";
        StateDirectoryMode = "0700";
        ReadWritePaths = [ "/var/lib/opd" "/etc" "/run" "-/home" "-/var/lib/lxc" "-/var/cache/lxc" ];
        ProtectHome = "read-only";
        PrivateTmp = true;
        PrivateMounts = true;
        ProtectControlGroups = true;
        ProtectKernelLogs = true;
        ProtectHostname = true;
        ProtectProc = "invisible";
        NoNewPrivileges = true;
        RestrictNamespaces = "net mnt";
        RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK" ];
        SystemCallArchitectures = "native";
        SystemCallFilter = [ "@system-service @mount @module @privileged" "~@clock @cpu-emulation @debug @obsolete @raw-io @reboot @swap" ];
        SystemCallErrorNumber = "EPERM";
        LockPersonality = true;
        RestrictRealtime = true;
        CapabilityBoundingSet = [
          "CAP_CHOWN" "CAP_DAC_OVERRIDE" "CAP_DAC_READ_SEARCH" "CAP_FOWNER" "CAP_FSETID" "CAP_KILL"
          "CAP_SETUID" "CAP_SETGID" "CAP_AUDIT_WRITE" "CAP_NET_ADMIN" "CAP_SYS_ADMIN" "CAP_SYS_MODULE"
        ];
        UMask = "0022";
      };
    };

    # the same unit as packaging/systemd/opd-boot.service: the network-level plugins converge
    # at every boot before network.target, whether or not the daemon runs
    systemd.services.opd-boot = {
      description = "opd: network, firewall and sysctl state of the document, early at boot";
      wantedBy = [ "network-online.target" "multi-user.target" ];
      after = [ "local-fs.target" "systemd-modules-load.service" "systemd-sysctl.service" "network-pre.target" "systemd-networkd.service" "NetworkManager.service" ]
        ++ lib.optionals usesOvs [ "ovsdb.service" "ovs-vswitchd.service" ];
      before = [ "network.target" "network-online.target" "opd.service" "shutdown.target" ];
      conflicts = [ "shutdown.target" ];
      unitConfig.DefaultDependencies = false;
      path = [ pkgs.iproute2 pkgs.nftables pkgs.util-linux ]
        ++ lib.optional usesOvs config.virtualisation.vswitch.package;
      environment.OPD_LOG_LEVEL = "info";
      # the document's parameters: the host's vars file (services.opd.vars), as packaging/systemd/opd-boot.service
      environment.OPD_VARS_FILE = cfg.varsFile;
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        ExecStart = "${cfg.package}/bin/opd ${escapeSystemdExecArgs [ "apply" "--only" "firewall,net,ovs,sysctl" "--audit-log" cfg.auditLog stateFile ]}";
        TimeoutStartSec = "5min";
        ProtectSystem = "strict";
        StateDirectory = "opd";
        StateDirectoryMode = "0700";
        ReadWritePaths = [ "/var/lib/opd" "/etc" "/run" ];
        ProtectHome = true;
        PrivateTmp = true;
        PrivateMounts = true;
        ProtectControlGroups = true;
        ProtectKernelLogs = true;
        ProtectKernelModules = true;
        ProtectHostname = true;
        ProtectClock = true;
        ProtectProc = "invisible";
        NoNewPrivileges = true;
        RestrictNamespaces = "net";
        RestrictAddressFamilies = [ "AF_UNIX" "AF_NETLINK" "AF_INET" "AF_INET6" ];
        IPAddressDeny = "any";
        DevicePolicy = "closed";
        DeviceAllow = "/dev/net/tun rw";
        SystemCallArchitectures = "native";
        SystemCallFilter = [ "@system-service" "~@privileged @resources" ];
        SystemCallErrorNumber = "EPERM";
        LockPersonality = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        CapabilityBoundingSet = [ "CAP_NET_ADMIN" "CAP_SYS_ADMIN" ];
        UMask = "0022";
      };
    };
  };
}

# NixOS module for opd: `services.opd = { enable = true; state = { ovs.bridges.ovsbr0.ports = { }; }; };`
# renders the state document with pkgs.formats.json into /etc/opd/state.json and runs
# `opd daemon` as the same Type=notify unit as packaging/systemd/opd.service.
# Moving from op-dbus: rename `services.op-dbus` to `services.opd`; `stateConfig` and `mode`
# are accepted as they are.
{ config, lib, pkgs, ... }:

let
  cfg = config.services.opd;
  json = pkgs.formats.json { };

  plugins = cfg.state // cfg.stateConfig;
  document = { version = 1; inherit plugins; };
  renderedState = json.generate "opd-state.json" document;
  stateFile = if cfg.stateFile != null then cfg.stateFile else "/etc/opd/state.json";

  # op-dbus puts OVS bridges under net.interfaces with type ovs-bridge
  usesOvs = plugins ? ovs
    || lib.any (i: (i.type or "") == "ovs-bridge") ((plugins.net or { }).interfaces or [ ]);
  usesLxc = plugins ? lxc;
  usesLibvirt = plugins ? libvirt;

  fleet = cfg.fleet;
  # fleet mode: the document comes from etcd (opd daemon --etcd); it is kept under /var/lib/opd
  fleetArgs = [ "--etcd" (builtins.concatStringsSep "," fleet.etcd) "--lease-ttl" (toString fleet.leaseTtl) ]
    ++ lib.optionals (fleet.host != null) [ "--host" fleet.host ]
    ++ builtins.concatLists (map (k: [ "--label" "${k}=${fleet.labels.${k}}" ]) (builtins.attrNames fleet.labels))
    ++ lib.optionals (fleet.user != null) [ "--etcd-user" fleet.user ]
    ++ lib.optionals (fleet.passwordFile != null) [ "--etcd-password-file" fleet.passwordFile ];
  args = [ "daemon" ]
    ++ (if fleet.enable then fleetArgs else [ "--state" stateFile ])
    ++ [ "--resync" (toString cfg.resync) "--audit-log" cfg.auditLog ]
    ++ lib.optional cfg.allowDestroy "--allow-destroy"
    ++ cfg.extraArgs;
in
{
  options.services.opd = {
    enable = lib.mkEnableOption "opd, the declarative reconciler for virtualization hosts (opd daemon)";

    package = lib.mkOption {
      type = lib.types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./nix/package.nix { }";
      description = "The opd package.";
    };

    state = lib.mkOption {
      type = json.type;
      default = { };
      example = lib.literalExpression ''{ ovs.bridges.ovsbr0.ports.vi100 = { type = "internal"; tag = 10; }; }'';
      description = ''
        The `plugins` of the state document (one attribute per plugin: ovs, systemd, lxc, …),
        rendered as JSON into /etc/opd/state.json. Only what is named here is managed.
      '';
    };

    stateConfig = lib.mkOption {
      type = json.type;
      default = { };
      description = "op-dbus's name for `state` (merged into it), so op-dbus configurations move over by renaming the service.";
    };

    stateFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      example = "/etc/opd/state.yaml";
      description = "Use this document (YAML or JSON) instead of rendering `state`. Edits are picked up without a restart.";
    };

    mode = lib.mkOption {
      type = lib.types.nullOr (lib.types.enum [ "full" "standalone" "agent" ]);
      default = null;
      description = "Accepted for op-dbus compatibility and ignored: opd manages exactly what the state names.";
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

      etcd = lib.mkOption {
        type = lib.types.listOf lib.types.str;
        default = [ ];
        example = [ "https://10.0.0.1:2379" "https://10.0.0.2:2379" "https://10.0.0.3:2379" ];
        description = "etcd client URLs (opd daemon --etcd).";
      };

      host = lib.mkOption {
        type = lib.types.nullOr lib.types.str;
        default = null;
        example = "kvm-07";
        description = "This host's name in the fleet (default: the hostname).";
      };

      labels = lib.mkOption {
        type = lib.types.attrsOf lib.types.str;
        default = { };
        example = { role = "kvm"; rack = "b2"; };
        description = "Labels that fragments select hosts by (opd fleet put --selector role=kvm).";
      };

      leaseTtl = lib.mkOption {
        type = lib.types.ints.unsigned;
        default = 10;
        description = "Seconds after which the host shows as not alive when the daemon stops renewing its lease.";
      };

      user = lib.mkOption {
        type = lib.types.nullOr lib.types.str;
        default = null;
        example = "opd-host-kvm-07";
        description = "etcd user created by `opd fleet enroll NAME` (reads only this host's fragments, writes only its status).";
      };

      passwordFile = lib.mkOption {
        type = lib.types.nullOr lib.types.str;
        default = null;
        example = "/run/keys/opd-etcd-password";
        description = "File holding the etcd user's password (kept out of the Nix store).";
      };
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
        assertion = (fleet.user == null) == (fleet.passwordFile == null);
        message = "services.opd: set services.opd.fleet.user and services.opd.fleet.passwordFile together (opd fleet enroll prints both).";
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

    environment.systemPackages = [ cfg.package ];
    environment.etc = lib.mkIf (cfg.stateFile == null && !fleet.enable) { "opd/state.json".source = renderedState; };
    services.dbus.packages = [ cfg.package ];

    systemd.services.opd = {
      description = "opd declarative reconciler (continuous)";
      documentation = [ "https://opd.dev" ];
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" "dbus.service" ]
        ++ lib.optional usesOvs "ovsdb.service" ++ lib.optional usesOvs "vswitchd.service"
        ++ lib.optional usesLibvirt "libvirtd.service";
      path = [ pkgs.systemd pkgs.iproute2 ]
        ++ lib.optional usesOvs config.virtualisation.vswitch.package
        ++ lib.optional usesLxc pkgs.lxc
        ++ lib.optional usesLibvirt pkgs.libvirt;
      # a changed document reaches the running daemon as SIGHUP on nixos-rebuild switch
      reloadTriggers = lib.optional (cfg.stateFile == null && !fleet.enable) renderedState;
      environment.OPD_LOG_LEVEL = "info";
      # the same unit as packaging/systemd/opd.service (a test compares them)
      serviceConfig = {
        Type = "notify";
        NotifyAccess = "all";
        ExecStart = "${cfg.package}/bin/opd ${lib.escapeShellArgs args}";
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
        ReadWritePaths = [ "/var/lib/opd" "/etc" "/run" "-/var/lib/lxc" "-/var/cache/lxc" ];
        NoNewPrivileges = true;
        PrivateTmp = true;
        LockPersonality = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        ProtectClock = true;
        ProtectKernelLogs = true;
        SystemCallArchitectures = "native";
        RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK" "AF_PACKET" ];
        UMask = "0022";
      };
    };

    # the same unit as packaging/systemd/opd-boot.service: the network-level plugins converge
    # at every boot before network.target, whether or not the daemon runs
    systemd.services.opd-boot = {
      description = "opd: network, firewall and sysctl state of the document, early at boot";
      wantedBy = [ "network-online.target" "multi-user.target" ];
      after = [ "local-fs.target" "systemd-modules-load.service" "systemd-sysctl.service" "network-pre.target" "systemd-networkd.service" "NetworkManager.service" ]
        ++ lib.optional usesOvs "ovsdb.service" ++ lib.optional usesOvs "vswitchd.service";
      before = [ "network.target" "network-online.target" "opd.service" "shutdown.target" ];
      conflicts = [ "shutdown.target" ];
      unitConfig.DefaultDependencies = false;
      path = [ pkgs.iproute2 pkgs.nftables pkgs.util-linux ]
        ++ lib.optional usesOvs config.virtualisation.vswitch.package;
      environment.OPD_LOG_LEVEL = "info";
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        ExecStart = "${cfg.package}/bin/opd ${lib.escapeShellArgs [ "apply" "--only" "firewall,net,ovs,sysctl" "--audit-log" cfg.auditLog stateFile ]}";
        TimeoutStartSec = "5min";
        ProtectSystem = "strict";
        StateDirectory = "opd";
        ReadWritePaths = [ "/var/lib/opd" "/etc" "/run" ];
        NoNewPrivileges = true;
      };
    };
  };
}

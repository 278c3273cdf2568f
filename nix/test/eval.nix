# Evaluates nix/module.nix and nix/package.nix without nixpkgs (CI has Debian's nix-bin and no
# channels) through nix/test/lib.nix, a model of nixpkgs' module system (lib.evalModules):
#   nix-instantiate --eval --strict --json --readonly-mode nix/test/eval.nix -A <scenario>
# Each scenario is a NixOS-like evaluation: nix/module.nix + the NixOS option declarations it uses
# (nix/test/nixos-stubs.nix) + the scenario's modules. Scenarios that must fail are evaluated on
# their own (-A name) and the test reads nix's error. test/integration/nix.test.ts asserts on them.
let
  lib = import ./lib.nix;
  pkgs = import ./pkgs.nix lib;

  evalNixos = modules: lib.evalModules {
    modules = [ ../module.nix ./nixos-stubs.nix ] ++ modules;
    specialArgs = { inherit pkgs; };
  };

  host = {
    virtualisation.vswitch.enable = true;
    virtualisation.lxc.enable = true;
  };

  report = modules:
    let
      c = (evalNixos modules).config;
      svc = c.systemd.services.opd or null;
      etc = c.environment.etc."opd/state.json" or null;
      validation = if etc == null then null else etc.source;
    in {
      warnings = c.warnings;
      assertions = map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions);
      enabled = c.services.opd.enable;
      service = if svc == null then null else {
        inherit (svc) after requires wantedBy wants;
        path = map toString svc.path;
        reloadTriggers = map toString svc.reloadTriggers;
        serviceConfig = svc.serviceConfig // { ExecStart = toString svc.serviceConfig.ExecStart; ExecReload = toString svc.serviceConfig.ExecReload; };
      };
      # the rendered document, and the build-time check that turns it into /etc/opd/state.json
      stateJson = if validation == null then null else validation.file.text;
      statePath = if validation == null then null else toString validation;
      validate = if validation == null then null else { inherit (validation) buildCommand; tools = map toString validation.nativeBuildInputs; file = toString validation.file; };
      # a stateFile given as a path: the store copy that ExecStart names, validated the same way
      stateFileValidate = let v = svc.reloadTriggers or [ ]; in if v == [ ] || etc != null then null else { inherit ((builtins.head v)) buildCommand; file = toString (builtins.head v).file; };
      dbusPackages = map toString c.services.dbus.packages;
      # opd-boot: the network-level plugins of the document, converged early at every boot
      bootService = let b = c.systemd.services.opd-boot or null; in if b == null then null else {
        inherit (b) after before wantedBy;
        path = map toString b.path;
        serviceConfig = b.serviceConfig // { ExecStart = toString b.serviceConfig.ExecStart; };
      };
    };

  seed = ./seed-002-op-dbus.nix;
in
{
  package = let pkg = pkgs.callPackage ../package.nix { }; in {
    inherit (pkg) pname version npmBuildScript postInstall;
    name = toString pkg;
    mainProgram = pkg.meta.mainProgram;
    npmDeps = { inherit (pkg.npmDeps) npmRoot; lockfileVersion = pkg.npmDeps.lock.lockfileVersion; };
    npmConfigHook = toString pkg.npmConfigHook;
    hasNpmDepsHash = pkg ? npmDepsHash;
  };

  disabled = report [ host ];
  state = report [ host {
    services.opd = {
      enable = true;
      state.ovs.bridges.ovsbr0.ports = { vi100 = { type = "internal"; tag = 10; }; };
      resync = 120;
      allowDestroy = true;
      extraArgs = [ "--backoff-cap" "60" "--log-level" "debug 100%" "$HOME" ];
    };
  } ];

  # seed 002's services.op-dbus block, verbatim, on a host with Open vSwitch and LXC
  seed002 = report [ host seed ];

  # two modules contribute to the same state: attribute sets merge by key, lists concatenate
  deepMerge = report [ host
    { services.opd = { enable = true; state.ovs.bridges.a.ports.p1 = { }; state.net.interfaces = [ { name = "a"; type = "ovs-bridge"; } ]; }; }
    { services.op-dbus.stateConfig = { ovs.bridges.a.datapath_type = "netdev"; ovs.bridges.b.ports = { }; }; }
    { services.opd.stateConfig.net.interfaces = [ { name = "b"; type = "ovs-bridge"; } ]; }
    { services.opd.state.systemd.units."x.service" = lib.mkIf true { enabled = true; }; }
  ];

  # laziness: a disabled service evaluates nothing of its state, not even a throw inside it
  lazy = report [ host { services.opd = { enable = false; state.ovs = throw "state must not be evaluated when disabled"; }; } ];

  example = report [ ../../examples/nixos/opdbus-full-mode.nix ];

  stateFilePath = report [ host { services.opd = { enable = true; stateFile = ../../examples/demo.yaml; }; } ];
  stateFileString = report [ host { services.opd = { enable = true; stateFile = "/etc/opd/state.yaml"; }; } ];
  noVswitch = report [ seed { virtualisation.lxc.enable = true; } ];
  both = report [ host { services.opd = { enable = true; stateFile = "/etc/opd/state.yaml"; state.ovs.bridges.b.ports = { }; }; } ];
  nothing = report [ host { services.opd.enable = true; } ];
  agentWithOvs = report [ host seed { services.op-dbus.mode = lib.mkForce "agent"; } ];

  fleet = report [ host { services.opd = { enable = true; fleet = { enable = true; etcd = [ "https://10.0.0.1:2379" "https://10.0.0.2:2379" ]; host = "kvm-07"; labels = { role = "kvm"; rack = "b2"; }; user = "opd-host-kvm-07"; passwordFile = "/run/keys/opd-etcd"; caFile = "/etc/opd/etcd-ca.pem"; certFile = "/etc/opd/kvm-07.pem"; keyFile = "/run/keys/kvm-07.key"; keysFile = "/etc/opd/operator-keys.pub"; }; }; } ];
  fleetCertNoKey = report [ host { services.opd = { enable = true; fleet = { enable = true; etcd = [ "https://10.0.0.1:2379" ]; certFile = "/etc/opd/kvm-07.pem"; }; }; } ];
  fleetNoEtcd = report [ host { services.opd = { enable = true; fleet.enable = true; }; } ];

  # these must fail (the test reads nix's message)
  badMode = report [ host { services.op-dbus = { enable = true; mode = "proxmox"; stateConfig.systemd.units = { }; }; } ];
  unknownOpdbusOption = report [ host { services.op-dbus = { enable = true; stateConfig.systemd.units = { }; enableMagic = true; }; } ];
  unknownTopLevel = report [ host { services.opd.enable = true; services.opd.state.systemd.units = { }; networking.bogus = 1; } ];
  badType = report [ host { services.opd = { enable = true; state.systemd.units = { }; resync = "5 min"; }; } ];
  conflict = report [ host { services.opd = { enable = true; state.ovs.bridges.a.datapath_type = "netdev"; }; } { services.opd.state.ovs.bridges.a.datapath_type = "system"; } ];
}

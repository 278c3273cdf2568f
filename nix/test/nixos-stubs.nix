# Declarations of the NixOS options that nix/module.nix and the op-dbus configurations set, with
# the types NixOS gives them (nixos/modules/misc/assertions.nix, config/system-path.nix,
# system/etc/etc.nix, services/system/dbus.nix, system/boot/systemd.nix, virtualisation/*).
# Everything not declared here is an unknown option, as in a real evaluation.
{ lib, ... }:
let
  inherit (lib) mkOption types;
  fake = name: { type = "derivation"; inherit name; outPath = "/nix/store/00000000000000000000000000000000-${name}"; };
in
{
  options = {
    warnings = mkOption { type = types.listOf types.str; default = [ ]; };
    assertions = mkOption { type = types.listOf types.unspecified; default = [ ]; };
    environment.systemPackages = mkOption { type = types.listOf types.package; default = [ ]; };
    environment.etc = mkOption { type = types.attrsOf (types.attrsOf types.unspecified); default = { }; };
    services.dbus.enable = mkOption { type = types.bool; default = true; };
    services.dbus.packages = mkOption { type = types.listOf types.package; default = [ ]; };
    systemd.services = mkOption { type = types.attrsOf (types.submodule { freeformType = types.attrsOf types.unspecified; }); default = { }; };
    virtualisation.vswitch.enable = mkOption { type = types.bool; default = false; };
    virtualisation.vswitch.resetOnStart = mkOption { type = types.bool; default = false; };
    virtualisation.vswitch.package = mkOption { type = types.package; default = fake "openvswitch"; };
    virtualisation.lxc.enable = mkOption { type = types.bool; default = false; };
    virtualisation.lxc.lxcfs.enable = mkOption { type = types.bool; default = false; };
    virtualisation.libvirtd.enable = mkOption { type = types.bool; default = false; };
    environment.variables = mkOption { type = types.attrsOf types.str; default = { }; };
    system.stateVersion = mkOption { type = types.str; default = "24.05"; };
  };
}
